//! TLS echo server for bench/run_tls_echo.sh, on Tokio and OpenSSL (tokio-openssl).
//!
//!     tokio_tls -cert CERT -key KEY [-workers N] [-lifetime 25s]
//!
//! Listens on 127.0.0.1 port 0 and prints `PORT n`. A multi-thread runtime with N worker threads
//! (`worker_threads(N)`, also for N = 1; default 1), the counterpart of weft's N worker loops and of
//! Go's GOMAXPROCS=N. One task per connection: the TLS handshake, then read up to 4096 bytes and
//! write them back, until end of stream. Stops by itself once its open connections are back to 0
//! after the first one, with a hard stop after -lifetime; this is bench/go_tls's behaviour.
//!
//! The OpenSSL context is set up like weft's server side and the benchmark client: TLS 1.2 at
//! least (the client asks for 1.3), no renegotiation, no compression, partial writes and
//! read-ahead (one read syscall per socket read, not one per record header and body); everything
//! else is OpenSSL's default. It is the same OpenSSL library as weft's and the client's.

use std::io::Write;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use openssl::ssl::{Ssl, SslContext, SslFiletype, SslMethod, SslMode, SslOptions, SslVersion};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Notify;
use tokio_openssl::SslStream;

struct Opts {
    cert: String,
    key: String,
    workers: usize,
    lifetime: Duration,
}

fn usage() -> ! {
    eprintln!("usage: tokio_tls -cert CERT -key KEY [-workers N] [-lifetime 25s]");
    std::process::exit(2);
}

fn fail(what: &str, err: impl std::fmt::Display) -> ! {
    eprintln!("tokio_tls: {what}: {err}");
    std::process::exit(1);
}

fn parse_args() -> Opts {
    let mut o = Opts { cert: String::new(), key: String::new(), workers: 1, lifetime: Duration::from_secs(25) };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().unwrap_or_else(|| usage());
        match a.trim_start_matches('-') {
            "cert" => o.cert = val(),
            "key" => o.key = val(),
            "workers" => o.workers = val().parse().ok().filter(|&n| n > 0).unwrap_or_else(|| usage()),
            "lifetime" => {
                let v = val();
                let secs: f64 = v.trim_end_matches('s').parse().ok().filter(|&s| s > 0.0).unwrap_or_else(|| usage());
                o.lifetime = Duration::from_secs_f64(secs);
            }
            _ => usage(),
        }
    }
    if o.cert.is_empty() || o.key.is_empty() {
        usage();
    }
    o
}

fn context(o: &Opts) -> SslContext {
    let mut b = SslContext::builder(SslMethod::tls_server()).unwrap_or_else(|e| fail("SSL_CTX_new", e));
    b.set_min_proto_version(Some(SslVersion::TLS1_2)).unwrap_or_else(|e| fail("min version", e));
    b.set_options(SslOptions::NO_RENEGOTIATION | SslOptions::NO_COMPRESSION);
    b.set_mode(SslMode::ENABLE_PARTIAL_WRITE | SslMode::ACCEPT_MOVING_WRITE_BUFFER);
    b.set_read_ahead(true);
    b.set_certificate_chain_file(&o.cert).unwrap_or_else(|e| fail(&o.cert, e));
    b.set_private_key_file(&o.key, SslFiletype::PEM).unwrap_or_else(|e| fail(&o.key, e));
    b.check_private_key().unwrap_or_else(|e| fail("the key does not match the certificate", e));
    b.build()
}

// One connection: handshake, then echo until end of stream or an error.
async fn serve(ctx: Arc<SslContext>, sock: tokio::net::TcpStream) {
    // Go, asyncio and weft turn Nagle off on their TCP sockets by default; Tokio does not.
    let _ = sock.set_nodelay(true);
    let ssl = match Ssl::new(&ctx) {
        Ok(s) => s,
        Err(_) => return,
    };
    let mut tls = match SslStream::new(ssl, sock) {
        Ok(s) => s,
        Err(_) => return,
    };
    if Pin::new(&mut tls).accept().await.is_err() {
        return;
    }
    let mut buf = vec![0u8; 4096];
    loop {
        match tls.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if tls.write_all(&buf[..n]).await.is_err() {
                    break;
                }
            }
        }
    }
    let _ = tls.shutdown().await;
}

async fn run(o: Opts) {
    let ctx = Arc::new(context(&o));
    let ln = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap_or_else(|e| fail("bind", e));
    println!("PORT {}", ln.local_addr().unwrap_or_else(|e| fail("local_addr", e)).port());
    std::io::stdout().flush().ok();
    let open = Arc::new(AtomicUsize::new(0));
    let idle = Arc::new(Notify::new());
    let (op, id) = (open.clone(), idle.clone());
    let acceptor = tokio::spawn(async move {
        loop {
            let sock = match ln.accept().await {
                Ok((s, _)) => s,
                Err(_) => continue,
            };
            op.fetch_add(1, Ordering::SeqCst);
            let (ctx, op, id) = (ctx.clone(), op.clone(), id.clone());
            tokio::spawn(async move {
                serve(ctx, sock).await;
                if op.fetch_sub(1, Ordering::SeqCst) == 1 {
                    id.notify_one();   // (a permit if nobody waits yet)
                }
            });
        }
    });
    if tokio::time::timeout(o.lifetime, idle.notified()).await.is_err() {
        eprintln!("tokio_tls: hard stop after {:?}", o.lifetime);
    }
    acceptor.abort();
}

fn main() {
    let o = parse_args();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(o.workers)
        .enable_all()
        .build()
        .unwrap_or_else(|e| fail("runtime", e));
    // the body runs in a spawned task, so on a worker thread like every connection
    let body = rt.spawn(run(o));
    let _ = rt.block_on(body);
    rt.shutdown_background();
}
