/* The loop's timers: a hierarchical timing wheel for deadlines in later ticks,
 * and a small binary min-heap ("near") for the deadlines of the tick the loop
 * has reached, ordered by (deadline in ns, sequence number) so timers fire in
 * deadline order and equal deadlines in the order they were set.
 *
 * A tick is 2^WEFT__TICK_SHIFT ns (about 1 ms). The wheel has WEFT__WHEEL_LEVELS
 * levels of 64 slots; level k's slots span 64^k ticks each, aligned, so eight
 * levels cover every uint64_t deadline. A timer whose tick is later than
 * `elapsed` (the tick reached) is linked into the slot of the lowest level on
 * which its tick and `elapsed` share the digits above: level = (index of the
 * highest bit where they differ) / 6. So every linked timer lies in a slot that
 * starts after `elapsed`, lower levels hold earlier timers than higher ones, and
 * the earliest non-empty slot is the lowest set bit of the lowest non-empty
 * level's occupancy word. Adding and cancelling are O(1): each slot is
 * WEFT__WHEEL_CHAINS intrusive doubly linked lists (through the handle's
 * next/prev), filled in turn; nothing is compared or moved for the timers of
 * later ticks, which is most of them.
 *
 * When the near heap is empty and the clock has entered a later tick, the
 * earliest slot that starts by then is emptied (its lists walked side by side,
 * so the cold handles of a busy tick are loaded several at a time): its timers
 * of that tick go to the near heap, the others are linked again, a level lower
 * (a timer is relinked at most once per level it descends). One slot at a time,
 * so after a long step the near heap still holds one tick's timers, not every
 * due one. It holds only timers of ticks already reached (and any set for a
 * deadline already past), so its top is the earliest timer of all; it stores
 * each deadline next to its handle pointer, so sifting reads a handle only to
 * break a tie.
 *
 * heap_idx in a handle says where it is: its index in the near heap, or
 * WEFT__IN_WHEEL | ((level * 64 + slot) * WEFT__WHEEL_CHAINS + list), or
 * UINT32_MAX when not scheduled. One libuv timer per loop is armed for
 * weft__timers_next() (loop.c). */
#include "core/loop.h"

#define IN_WHEEL WEFT__IN_WHEEL
#define SLOT_BITS 6
#define NSLOTS WEFT__WHEEL_SLOTS
#define CHAINS WEFT__WHEEL_CHAINS
#define NEAR_KEEP 1024   /* entries a drained near heap may keep allocated */

static inline uint64_t tick_of(uint64_t ns) { return ns >> WEFT__TICK_SHIFT; }

/* ---- the near heap ------------------------------------------------------------ */

static inline bool before(const weft__near_t *a, const weft__near_t *b)
{
    return a->when < b->when || (a->when == b->when && a->h->seq < b->h->seq);
}

static void near_up(weft__timers_t *w, uint32_t i)
{
    weft__near_t x = w->near[i];
    while (i > 0) {
        uint32_t p = (i - 1) / 2;
        if (!before(&x, &w->near[p]))
            break;
        w->near[i] = w->near[p];
        w->near[i].h->heap_idx = i;
        i = p;
    }
    w->near[i] = x;
    x.h->heap_idx = i;
}

static void near_down(weft__timers_t *w, uint32_t i)
{
    weft__near_t x = w->near[i];
    uint32_t n = w->near_n;
    for (;;) {
        uint32_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && before(&w->near[c + 1], &w->near[c]))
            c++;
        if (!before(&w->near[c], &x))
            break;
        w->near[i] = w->near[c];
        w->near[i].h->heap_idx = i;
        i = c;
    }
    w->near[i] = x;
    x.h->heap_idx = i;
}

static int near_push(weft__timers_t *w, weft__handle_t *h)
{
    if (w->near_n == w->near_cap) {
        uint32_t cap = w->near_cap ? w->near_cap * 2 : 64;
        weft__near_t *a = realloc(w->near, (size_t)cap * sizeof *a);
        if (!a)
            return WEFT_ENOMEM;
        w->near = a;
        w->near_cap = cap;
    }
    uint32_t i = w->near_n++;
    w->near[i] = (weft__near_t){ .when = h->when, .h = h };
    near_up(w, i);
    return 0;
}

static void near_remove(weft__timers_t *w, uint32_t i)
{
    uint32_t last = --w->near_n;
    if (i != last) {
        w->near[i] = w->near[last];
        if (i > 0 && before(&w->near[i], &w->near[(i - 1) / 2]))
            near_up(w, i);
        else
            near_down(w, i);
    }
    if (last == 0 && w->near_cap > NEAR_KEEP) {   /* a burst is over: do not keep its array */
        free(w->near);
        w->near = NULL;
        w->near_cap = 0;
    }
}

/* ---- the wheel ---------------------------------------------------------------- */

/* First tick of slot @s of level @lv, given the tick the wheel has reached. */
static inline uint64_t slot_start(const weft__timers_t *w, unsigned lv, unsigned s)
{
    unsigned hi = (lv + 1) * SLOT_BITS;   /* at most 48 */
    return (w->elapsed & ~(((uint64_t)1 << hi) - 1)) | ((uint64_t)s << (lv * SLOT_BITS));
}

/* Link @h (tick @t > elapsed) into its slot, on the slot's chains in turn. */
static void wheel_link(weft__timers_t *w, weft__handle_t *h, uint64_t t)
{
    unsigned msb = 63u - (unsigned)__builtin_clzll(t ^ w->elapsed);
    unsigned lv = msb / SLOT_BITS;
    unsigned s = (unsigned)(t >> (lv * SLOT_BITS)) & (NSLOTS - 1);
    unsigned k = w->slot_n[lv][s] % CHAINS;
    weft__handle_t **head = &w->slot[lv][s][k];
    uint64_t bit = (uint64_t)1 << s;
    if (!(w->occupied[lv] & bit) || h->when < w->slot_min[lv][s])
        w->slot_min[lv][s] = h->when;
    h->prev = NULL;
    h->next = *head;
    if (*head)
        (*head)->prev = h;
    *head = h;
    w->occupied[lv] |= bit;
    w->slot_n[lv][s]++;
    h->heap_idx = IN_WHEEL | ((lv * NSLOTS + s) * CHAINS + k);
}

static void wheel_unlink(weft__timers_t *w, weft__handle_t *h)
{
    unsigned x = h->heap_idx & ~IN_WHEEL, k = x % CHAINS, lv = x / CHAINS / NSLOTS, s = x / CHAINS % NSLOTS;
    if (h->prev)
        h->prev->next = h->next;
    else
        w->slot[lv][s][k] = h->next;
    if (h->next)
        h->next->prev = h->prev;
    if (!--w->slot_n[lv][s])
        w->occupied[lv] &= ~((uint64_t)1 << s);
    h->next = h->prev = NULL;
}

/* Empty the earliest non-empty slot if it starts at or before tick @nt, and
 * move the wheel to its start: its timers of that tick go to the near heap,
 * the others are linked again, a level lower. Returns 1 if a slot was emptied,
 * 0 if none starts by @nt (the wheel then moves to @nt), WEFT_ENOMEM if the
 * near heap could not grow (nothing moved; the caller tries again later). */
static int advance_one(weft__timers_t *w, uint64_t nt)
{
    unsigned lv = 0;
    while (lv < WEFT__WHEEL_LEVELS && !w->occupied[lv])
        lv++;
    unsigned s = lv < WEFT__WHEEL_LEVELS ? (unsigned)__builtin_ctzll(w->occupied[lv]) : 0;
    uint64_t start = lv < WEFT__WHEEL_LEVELS ? slot_start(w, lv, s) : UINT64_MAX;
    if (start > nt) {
        w->elapsed = nt;
        return 0;
    }
    size_t need = (size_t)w->near_n + w->slot_n[lv][s];
    if (need > w->near_cap) {
        if (need > UINT32_MAX / 2)
            return WEFT_ENOMEM;
        uint32_t cap = w->near_cap ? w->near_cap : 64;
        while (cap < need)
            cap *= 2;
        weft__near_t *a = realloc(w->near, (size_t)cap * sizeof *a);
        if (!a)
            return WEFT_ENOMEM;
        w->near = a;
        w->near_cap = cap;
    }
    weft__handle_t *e[CHAINS];
    memcpy(e, w->slot[lv][s], sizeof e);
    memset(w->slot[lv][s], 0, sizeof e);
    w->slot_n[lv][s] = 0;
    w->occupied[lv] &= ~((uint64_t)1 << s);
    w->elapsed = start;
    /* the chains are walked side by side: their next handles are loaded
     * together, not one cache miss after the other */
    for (bool more = true; more;) {
        more = false;
        for (unsigned k = 0; k < CHAINS; k++) {
            weft__handle_t *h = e[k];
            if (!h)
                continue;
            e[k] = h->next;
            more |= e[k] != NULL;
            uint64_t t = tick_of(h->when);
            h->next = h->prev = NULL;
            if (t <= start) {   /* room reserved above */
                uint32_t i = w->near_n++;
                w->near[i] = (weft__near_t){ .when = h->when, .h = h };
                near_up(w, i);
            } else {
                wheel_link(w, h, t);
            }
        }
    }
    return 1;
}

/* ---- the timer set ------------------------------------------------------------ */

void weft__timers_reset(weft__timers_t *w, uint64_t now_ns)
{
    if (!w->n)
        w->elapsed = tick_of(now_ns);
}

int weft__timers_add(weft__timers_t *w, weft__handle_t *h)
{
    uint64_t t = tick_of(h->when);
    if (t <= w->elapsed) {
        int rc = near_push(w, h);
        if (rc < 0)
            return rc;
    } else {
        wheel_link(w, h, t);
    }
    h->flags |= WEFT__H_TIMER;
    w->n++;
    return 0;
}

void weft__timers_remove(weft__timers_t *w, weft__handle_t *h)
{
    if (!(h->flags & WEFT__H_TIMER))
        return;
    if (h->heap_idx & IN_WHEEL)
        wheel_unlink(w, h);
    else
        near_remove(w, h->heap_idx);
    h->heap_idx = UINT32_MAX;
    h->flags &= ~(uint32_t)WEFT__H_TIMER;
    w->n--;
}

weft__handle_t *weft__timers_pop_due(weft__timers_t *w, uint64_t now_ns)
{
    /* The near heap's top is the earliest timer held (the wheel holds later
     * ticks only). With the near heap empty, the wheel moves on slot by slot,
     * not to the present at once: after a long step many ticks may be due,
     * and taking one tick's timers at a time keeps the near heap small. */
    uint64_t nt = tick_of(now_ns);
    while (!w->near_n) {
        if (nt <= w->elapsed || advance_one(w, nt) <= 0)
            return NULL;
    }
    if (w->near[0].when > now_ns)
        return NULL;
    weft__handle_t *h = w->near[0].h;
    near_remove(w, 0);
    h->heap_idx = UINT32_MAX;
    h->flags &= ~(uint32_t)WEFT__H_TIMER;
    w->n--;
    return h;
}

uint64_t weft__timers_next(const weft__timers_t *w)
{
    if (w->near_n)
        return w->near[0].when;
    for (unsigned lv = 0; lv < WEFT__WHEEL_LEVELS; lv++) {
        if (!w->occupied[lv])
            continue;
        /* the earliest timers are in the lowest level's first slot: its
         * lowest deadline (exact, or earlier after a cancellation), so a
         * sleeping loop wakes at the deadline, not at a slot boundary */
        return w->slot_min[lv][(unsigned)__builtin_ctzll(w->occupied[lv])];
    }
    return UINT64_MAX;
}

void weft__timers_clear(weft__timers_t *w)
{
    for (uint32_t i = 0; i < w->near_n; i++) {
        weft__handle_t *h = w->near[i].h;
        h->flags &= ~(uint32_t)WEFT__H_TIMER;
        h->heap_idx = UINT32_MAX;
    }
    w->near_n = 0;
    for (unsigned lv = 0; lv < WEFT__WHEEL_LEVELS; lv++) {
        for (unsigned s = 0; s < NSLOTS; s++) {
            for (unsigned k = 0; k < CHAINS; k++) {
                weft__handle_t *h = w->slot[lv][s][k];
                while (h) {
                    weft__handle_t *next = h->next;
                    h->next = h->prev = NULL;
                    h->flags &= ~(uint32_t)WEFT__H_TIMER;
                    h->heap_idx = UINT32_MAX;
                    h = next;
                }
                w->slot[lv][s][k] = NULL;
            }
            w->slot_n[lv][s] = 0;
        }
        w->occupied[lv] = 0;
    }
    w->n = 0;
}

void weft__timers_free(weft__timers_t *w)
{
    weft__timers_clear(w);
    free(w->near);
    w->near = NULL;
    w->near_cap = 0;
}

/* ---- the loop's entry points -------------------------------------------------- */

int weft__timer_start(weft_loop_t *l, weft__handle_t *h, uint64_t when_ns)
{
    h->when = when_ns;
    h->seq = l->timer_seq++;
    if (!l->timers.n)
        weft__timers_reset(&l->timers, weft__now_ns());
    return weft__timers_add(&l->timers, h);
}

void weft__timer_cancel(weft_loop_t *l, weft__handle_t *h)
{
    weft__timers_remove(&l->timers, h);
}
