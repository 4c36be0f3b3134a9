/* distill — symbol visibility for the public API. */
#ifndef DISTILL_EXPORT_H
#define DISTILL_EXPORT_H

/** Marks a function exported by libdistill (everything else is hidden). */
#define DD_API __attribute__((visibility("default")))

/** Marks a plugin's entry symbol (plugins are built with hidden visibility). */
#define DD_PLUGIN_EXPORT __attribute__((visibility("default")))

#endif
