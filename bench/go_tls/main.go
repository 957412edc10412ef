// TLS echo server for bench/run_tls_echo.sh, on Go's crypto/tls.
//
//	go_tls -cert CERT -key KEY [-lifetime 25s]
//
// Listens on 127.0.0.1 port 0 and prints "PORT n". One goroutine per
// connection: read up to 4096 bytes, write them back, until end of stream.
// Stops by itself once its open connections are back to 0 after the first
// one, with a hard stop after -lifetime. Run it with GOMAXPROCS=N to give it
// N cores, as weft gets N worker loops.
package main

import (
	"crypto/tls"
	"flag"
	"fmt"
	"net"
	"os"
	"sync/atomic"
	"time"
)

func main() {
	certFile := flag.String("cert", "", "PEM certificate chain")
	keyFile := flag.String("key", "", "PEM private key")
	lifetime := flag.Duration("lifetime", 25*time.Second, "hard stop")
	flag.Parse()
	cert, err := tls.LoadX509KeyPair(*certFile, *keyFile)
	if err != nil {
		fmt.Fprintln(os.Stderr, "go_tls:", err)
		os.Exit(1)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	if err != nil {
		fmt.Fprintln(os.Stderr, "go_tls:", err)
		os.Exit(1)
	}
	fmt.Printf("PORT %d\n", ln.Addr().(*net.TCPAddr).Port)
	var open int64
	idle := make(chan struct{}, 1)
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
					n, err := c.Read(buf)
					if n > 0 {
						if _, werr := c.Write(buf[:n]); werr != nil {
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
					case idle <- struct{}{}:
					default:
					}
				}
			}(c)
		}
	}()
	select {
	case <-idle:
	case <-time.After(*lifetime):
		fmt.Fprintf(os.Stderr, "go_tls: hard stop after %v\n", *lifetime)
	}
	ln.Close()
}
