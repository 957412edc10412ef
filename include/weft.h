/**
 * @file weft.h
 * @brief weft: Python asyncio's programming model in C, on libuv.
 *
 * The one public header. See docs/asyncio-map.md for every asyncio name and its
 * weft counterpart, and docs/ARCHITECTURE.md for how it works.
 */
#ifndef WEFT_H
#define WEFT_H

#define WEFT_VERSION_MAJOR 0
#define WEFT_VERSION_MINOR 1
#define WEFT_VERSION_PATCH 0
#define WEFT_VERSION_STRING "0.1.0"

#include "weft/common.h"
#include "weft/loop.h"
#include "weft/future.h"
#include "weft/task.h"
#include "weft/runner.h"
#include "weft/asyncgen.h"
#include "weft/runtime.h"
#include "weft/debug.h"
#include "weft/combinators.h"
#include "weft/timeout.h"
#include "weft/taskgroup.h"
#include "weft/contextvar.h"
#include "weft/sync.h"
#include "weft/queue.h"
#include "weft/stream.h"
#include "weft/signal.h"
#include "weft/process.h"
#include "weft/fs.h"
#include "weft/udp.h"
#include "weft/tls.h"

#endif
