// Go peer for the benchmarks of bench/DEFINITIONS.md (weft's comparison programs).
//
//	go_bench --workers N [--quick] [--reps R] [--warmup W] [--only a,b] [--xt-lock=false]
//	go_bench --workers N --serve          (tcp_echo server: prints `PORT n`)
//
// stdout: one line per benchmark, `name go N median unit`; stderr: every measured
// repetition, `# name go N reps: v1 v2 ...`. N is GOMAXPROCS. rss_per_task and idle_cpu
// run first, once, in a fresh copy of this process (re-executed with --fresh). to_thread
// has no Go form (a goroutine simply calls the blocking function) and prints nothing.
// Every sum is checked; a failed check exits with status 1.
package main

import (
	"flag"
	"fmt"
	"math"
	"net"
	"os"
	"os/exec"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

var (
	workers = flag.Int("workers", 1, "GOMAXPROCS")
	quick   = flag.Bool("quick", false, "each benchmark once at 1/100 of the sizes")
	reps    = flag.Int("reps", 5, "measured repetitions")
	warmup  = flag.Int("warmup", 1, "warm-up repetitions (discarded)")
	only    = flag.String("only", "", "comma-separated benchmark names (default: all)")
	xtLock  = flag.Bool("xt-lock", true, "cross_thread_*: submit from a goroutine locked to its own OS thread")
	fresh   = flag.Bool("fresh", false, "internal: run rss_per_task and idle_cpu once")
	serve   = flag.Bool("serve", false, "run the tcp_echo server")
)

const peer = "go"

func check(ok bool, what string) {
	if !ok {
		fmt.Fprintf(os.Stderr, "check failed: %s\n", what)
		os.Exit(1)
	}
}

// sz picks the full size or the --quick one (1/100).
func sz(full, small int) int {
	if *quick {
		return small
	}
	return full
}

// number format shared with the other peers: whole numbers from 100 up, else 3 significant digits
func format(v float64) string {
	if math.Abs(v) >= 100 {
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	return strconv.FormatFloat(v, 'g', 3, 64)
}

func median(v []float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func report(name, unit string, v []float64) {
	parts := make([]string, len(v))
	for i, x := range v {
		parts[i] = format(x)
	}
	fmt.Fprintf(os.Stderr, "# %s %s %d reps: %s\n", name, peer, *workers, strings.Join(parts, " "))
	fmt.Printf("%s %s %d %s %s\n", name, peer, *workers, format(median(v)), unit)
}

func perOp(d time.Duration, n int) float64 { return float64(d.Nanoseconds()) / float64(n) }
func ms(d time.Duration) float64           { return float64(d.Nanoseconds()) / 1e6 }

// 1. spawn_many: n goroutines each store 1 in their slot; the root waits, then sums.
func spawnMany() []float64 {
	n := sz(100000, 1000)
	res := make([]int, n)
	var wg sync.WaitGroup
	t0 := time.Now()
	wg.Add(n)
	for i := 0; i < n; i++ {
		go func(i int) {
			res[i] = 1
			wg.Done()
		}(i)
	}
	wg.Wait()
	sum := 0
	for _, r := range res {
		sum += r
	}
	d := time.Since(t0)
	check(sum == n, "spawn_many sum")
	return []float64{perOp(d, n)}
}

// 2. yield_many: t goroutines, each calling runtime.Gosched y times.
func yieldMany() []float64 {
	t, y := sz(1000, 100), sz(1000, 100)
	res := make([]int, t)
	var wg sync.WaitGroup
	t0 := time.Now()
	wg.Add(t)
	for i := 0; i < t; i++ {
		go func(i int) {
			k := 0
			for ; k < y; k++ {
				runtime.Gosched()
			}
			res[i] = k
			wg.Done()
		}(i)
	}
	wg.Wait()
	sum := 0
	for _, r := range res {
		sum += r
	}
	d := time.Since(t0)
	check(sum == t*y, "yield_many sum")
	return []float64{perOp(d, t*y)}
}

// 3. ping_pong over two unbuffered channels.
func pingPong() []float64 {
	r := sz(100000, 1000)
	q1, q2 := make(chan int), make(chan int)
	pingDone, pongDone := make(chan bool, 1), make(chan bool, 1)
	t0 := time.Now()
	go func() {
		ok := true
		for i := 0; i < r; i++ {
			q1 <- i
			if <-q2 != i {
				ok = false
			}
		}
		pingDone <- ok
	}()
	go func() {
		for i := 0; i < r; i++ {
			q2 <- <-q1
		}
		pongDone <- true
	}()
	ok := <-pingDone
	<-pongDone
	d := time.Since(t0)
	check(ok, "ping_pong values")
	return []float64{perOp(d, r)}
}

// 4. chained_spawn: each goroutine starts the next one and returns; the last closes done.
func chain(k int, done chan struct{}) {
	if k == 0 {
		close(done)
		return
	}
	go chain(k-1, done)
}

func chainedSpawn() []float64 {
	d := sz(100000, 1000)
	done := make(chan struct{})
	t0 := time.Now()
	go chain(d-1, done)
	<-done
	el := time.Since(t0)
	return []float64{perOp(el, d)}
}

// 5. timers: the LCG delay table, n goroutines sleeping delay_i ms.
func delays(n int) []int {
	x := uint32(12345)
	out := make([]int, n)
	for i := range out {
		x = x*1103515245 + 12345
		out[i] = int((x >> 16) % 51)
	}
	return out
}

func timers() []float64 {
	n := sz(100000, 1000)
	ds := delays(n)
	want := 0
	for _, v := range ds {
		want += v
	}
	if n == 100000 {
		check(fmt.Sprint(ds[:8]) == "[23 18 9 30 21 31 30 10]" && want == 2497483, "timers delay table")
	}
	res := make([]int, n)
	var wg sync.WaitGroup
	t0 := time.Now()
	wg.Add(n)
	for i := 0; i < n; i++ {
		go func(i int) {
			time.Sleep(time.Duration(ds[i]) * time.Millisecond)
			res[i] = ds[i]
			wg.Done()
		}(i)
	}
	wg.Wait()
	sum := 0
	for _, r := range res {
		sum += r
	}
	el := ms(time.Since(t0))
	check(sum == want, "timers sum")
	return []float64{el, el - 50}
}

// 6. cross_thread_*: the submitter is a goroutine locked to its own OS thread (by default);
// every submission is a new goroutine answering i+1 on its own 1-slot channel.
func submit(i int) chan int {
	c := make(chan int, 1)
	go func() { c <- i + 1 }()
	return c
}

func crossThread(throughput bool, n int) float64 {
	type result struct {
		sum int
		el  time.Duration
	}
	out := make(chan result)
	go func() {
		if *xtLock {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
		}
		sum := 0
		t0 := time.Now()
		if throughput {
			cs := make([]chan int, n)
			for i := range cs {
				cs[i] = submit(i)
			}
			for _, c := range cs {
				sum += <-c
			}
		} else {
			for i := 0; i < n; i++ {
				sum += <-submit(i)
			}
		}
		out <- result{sum, time.Since(t0)}
	}()
	r := <-out
	check(r.sum == n*(n+1)/2, "cross_thread sum")
	return perOp(r.el, n)
}

func xtLatency() []float64    { return []float64{crossThread(false, sz(20000, 200))} }
func xtThroughput() []float64 { return []float64{crossThread(true, sz(100000, 1000))} }

// 8. fib_tasks: fib(n-1) in a new goroutine (result on a 1-slot channel), fib(n-2) inline.
func fib(n int) int {
	if n < 2 {
		return n
	}
	c := make(chan int, 1)
	go func() { c <- fib(n - 1) }()
	b := fib(n - 2)
	return <-c + b
}

func fibTasks() []float64 {
	n := sz(25, 15)
	t0 := time.Now()
	r := fib(n)
	el := ms(time.Since(t0))
	a, b := 0, 1
	for i := 0; i < n; i++ {
		a, b = b, a+b
	}
	check(r == a, "fib result")
	return []float64{el}
}

// 10./11. rss_per_task, then idle_cpu, once, in a fresh process.
func rssBytes() float64 {
	b, err := os.ReadFile("/proc/self/statm")
	check(err == nil, "read /proc/self/statm")
	f := strings.Fields(string(b))
	pages, err := strconv.Atoi(f[1])
	check(err == nil, "parse /proc/self/statm")
	return float64(pages * os.Getpagesize())
}

func cpuMs() float64 {
	var ru syscall.Rusage
	check(syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil, "getrusage")
	us := ru.Utime.Sec*1e6 + ru.Utime.Usec + ru.Stime.Sec*1e6 + ru.Stime.Usec
	return float64(us) / 1e3
}

func runFresh() {
	n := sz(100000, 1000)
	park := time.Duration(sz(3000, 100)) * time.Millisecond
	idle := time.Duration(sz(1000, 200)) * time.Millisecond
	var counter int64
	var started, finished sync.WaitGroup
	runtime.GC()
	before := rssBytes()
	started.Add(n)
	finished.Add(n)
	for i := 0; i < n; i++ {
		go func() {
			atomic.AddInt64(&counter, 1)
			started.Done()
			time.Sleep(park)
			finished.Done()
		}()
	}
	started.Wait()
	after := rssBytes()
	finished.Wait()
	check(atomic.LoadInt64(&counter) == int64(n), "rss_per_task count")
	runtime.GC()
	c0 := cpuMs()
	time.Sleep(idle)
	used := (cpuMs() - c0) / idle.Seconds()
	report("rss_per_task", "bytes/task", []float64{(after - before) / float64(n)})
	report("idle_cpu", "cpu_ms", []float64{used})
}

// 9. tcp_echo server: one goroutine per connection, 4096-byte buffer; it exits once the
// number of open connections is back to 0 (or after 25 s).
func runServer() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	check(err == nil, "listen")
	fmt.Printf("PORT %d\n", ln.Addr().(*net.TCPAddr).Port)
	os.Stdout.Sync()
	var open int64
	allClosed := make(chan struct{}, 1)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			atomic.AddInt64(&open, 1)
			go func(c net.Conn) {
				buf := make([]byte, 4096)
				for {
					k, err := c.Read(buf)
					if k > 0 {
						if _, werr := c.Write(buf[:k]); werr != nil {
							break
						}
					}
					if err != nil {
						break
					}
				}
				c.Close()
				if atomic.AddInt64(&open, -1) == 0 {
					select {
					case allClosed <- struct{}{}:
					default:
					}
				}
			}(c)
		}
	}()
	select {
	case <-allClosed:
	case <-time.After(25 * time.Second):
		fmt.Fprintln(os.Stderr, "echo server: hard stop after 25 s")
	}
	ln.Close()
}

type bench struct {
	name  string
	fn    func() []float64
	outs  []string // output names, one per value fn returns
	units []string
}

var benches = []bench{
	{"spawn_many", spawnMany, []string{"spawn_many"}, []string{"ns/task"}},
	{"yield_many", yieldMany, []string{"yield_many"}, []string{"ns/yield"}},
	{"ping_pong", pingPong, []string{"ping_pong"}, []string{"ns/roundtrip"}},
	{"chained_spawn", chainedSpawn, []string{"chained_spawn"}, []string{"ns/spawn"}},
	{"timers", timers, []string{"timers_total", "timers_overhead"}, []string{"ms", "ms"}},
	{"cross_thread_latency", xtLatency, []string{"cross_thread_latency"}, []string{"ns/roundtrip"}},
	{"cross_thread_throughput", xtThroughput, []string{"cross_thread_throughput"}, []string{"ns/item"}},
	{"fib_tasks", fibTasks, []string{"fib_tasks"}, []string{"ms"}},
}

var aliases = map[string]string{"timers_total": "timers", "timers_overhead": "timers", "idle_cpu": "rss_per_task"}

func main() {
	flag.Parse()
	if *workers < 1 || *reps < 1 || *warmup < 0 {
		fmt.Fprintln(os.Stderr, "usage: go_bench --workers N [--quick] [--reps R] [--warmup W] [--only a,b] [--xt-lock=false] [--serve]")
		os.Exit(2)
	}
	runtime.GOMAXPROCS(*workers)
	if *quick {
		*warmup, *reps = 0, 1
	}
	if *serve {
		runServer()
		return
	}
	if *fresh {
		runFresh()
		return
	}
	want := map[string]bool{}
	if *only != "" {
		for _, n := range strings.Split(*only, ",") {
			if a, ok := aliases[n]; ok {
				n = a
			}
			want[n] = true
		}
	}
	all := *only == ""
	if all || want["rss_per_task"] {
		args := []string{"--workers", strconv.Itoa(*workers), "--fresh"}
		if *quick {
			args = append(args, "--quick")
		}
		cmd := exec.Command(os.Args[0], args...)
		cmd.Stderr = os.Stderr
		out, err := cmd.Output()
		check(err == nil, fmt.Sprintf("fresh process: %v", err))
		os.Stdout.Write(out)
	}
	for _, b := range benches {
		if !all && !want[b.name] {
			continue
		}
		vals := make([][]float64, len(b.outs))
		for i := 0; i < *warmup+*reps; i++ {
			runtime.GC()
			r := b.fn()
			if i >= *warmup {
				for k := range r {
					vals[k] = append(vals[k], r[k])
				}
			}
		}
		for k := range b.outs {
			report(b.outs[k], b.units[k], vals[k])
		}
	}
}
