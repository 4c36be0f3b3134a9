/* Keeps the test-support library non-empty before any helper exists. */
typedef int dd_test_support_empty;
