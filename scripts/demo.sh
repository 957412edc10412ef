#!/bin/sh
# Run every example of examples/ in turn, printing its output.
set -e
dir="$1/examples"
for ex in multiloop say_after_sequence say_after_concurrent create_task future_set_result cancel_catch \
    gather wait wait_for as_completed shield timeout taskgroup asyncgen pipeline echo_server; do
  [ -x "$dir/$ex" ] || continue
  echo "== $ex"
  "$dir/$ex"
done
# the multi-loop server: its self-test connects to itself, stops on SIGTERM and exits
if [ -x "$dir/server" ]; then
  echo "== server --self-test"
  "$dir/server" --self-test
fi
