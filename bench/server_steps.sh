# Steps shared by run_tcp_echo.sh and run_tls_echo.sh (sourced by both, POSIX sh):
# a benchmark server prints "PORT n" once it listens and exits once its clients
# have left.

# wait_port FILE: sets $port to the port of FILE's "PORT n" line, waiting up
# to 10 s for it; $port is empty if none came.
wait_port() {
  port=
  _wp_i=0
  while [ -z "$port" ] && [ $_wp_i -lt 200 ]; do
    port=$(sed -n 's/^PORT \([0-9][0-9]*\)$/\1/p' "$1")
    [ -n "$port" ] || sleep 0.05
    _wp_i=$((_wp_i + 1))
  done
}

# wait_exit PID: waits up to 10 s for process PID to end; false if it still runs.
wait_exit() {
  _we_i=0
  while kill -0 "$1" 2>/dev/null && [ $_we_i -lt 100 ]; do
    sleep 0.1
    _we_i=$((_we_i + 1))
  done
  ! kill -0 "$1" 2>/dev/null
}
