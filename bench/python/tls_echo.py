#!/usr/bin/env python3
"""TLS echo server for bench/run_tls_echo.sh: asyncio streams with ssl=.

    tls_echo.py CERT KEY [--uvloop] [--lifetime S]

Listens on 127.0.0.1 port 0 and prints `PORT n`. Per connection: read up to
4096 bytes, write them back, drain, until end of stream (the same handler as
the streams server of peers.py, with an SSLContext). Stops by itself once its
open connections are back to 0 after the first one, with a hard stop after
--lifetime seconds (default 25). --uvloop runs it on uvloop's loop (its own
SSL implementation), else on asyncio's default loop.
"""
import argparse
import asyncio
import ssl
import sys


async def serve(cert, key, lifetime):
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    open_conns = 0

    async def handle(reader, writer):
        nonlocal open_conns
        open_conns += 1
        try:
            while data := await reader.read(4096):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, ssl.SSLError):
            pass
        finally:
            writer.close()
            open_conns -= 1
            if open_conns == 0 and not stop.done():
                stop.set_result(None)

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=ctx, backlog=1024)
    print(f"PORT {server.sockets[0].getsockname()[1]}", flush=True)
    try:
        await asyncio.wait_for(stop, lifetime)
    except asyncio.TimeoutError:
        print(f"tls echo server: hard stop after {lifetime} s", file=sys.stderr)
    server.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("cert")
    ap.add_argument("key")
    ap.add_argument("--uvloop", action="store_true")
    ap.add_argument("--lifetime", type=float, default=25.0)
    args = ap.parse_args()
    if args.uvloop:
        import uvloop
        uvloop.install()
    asyncio.run(serve(args.cert, args.key, args.lifetime))


if __name__ == "__main__":
    main()
