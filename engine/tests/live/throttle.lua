-- wrk script for engine/tests/live_http.rs: each connection waits 2 ms between requests, so a
-- debug build of the sniffer keeps up on a 2-core CI machine (an unthrottled wrk outruns it,
-- and then the test would measure drops, not correctness). scripts/live-bench.sh runs wrk
-- unthrottled against a release build.
function delay()
  return 2
end
