package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"time"
)

// wrkVerify drives GET /v1/supply/verify with wrk (a C load generator that leaves the server
// more of a small machine than an in-process Go client does): one wrk thread, clients
// connections, random commissioned serials from a Lua script.
func wrkVerify(ctx context.Context, dir, apiAddr string, o SupplyOptions) (perSec float64, p50, p99 time.Duration, n int, err error) {
	script := filepath.Join(dir, "verify.lua")
	lua := fmt.Sprintf(`math.randomseed(7)
request = function()
  local serial = string.format("B%%07dS%%04d", math.random(0, %d), math.random(0, %d))
  return wrk.format("GET", "/v1/supply/verify?code=%%2801%%29%s%%2821%%29" .. serial)
end
`, o.Txs-1, o.PacksPerTx-1, benchGTIN)
	if err := os.WriteFile(script, []byte(lua), 0o600); err != nil {
		return 0, 0, 0, 0, err
	}
	cmd := exec.CommandContext(ctx, "wrk", "-t1", fmt.Sprintf("-c%d", o.VerifyWorkers),
		fmt.Sprintf("-d%ds", int(o.VerifyDuration.Seconds())), "--latency", "-s", script, "http://"+apiAddr)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return 0, 0, 0, 0, fmt.Errorf("wrk: %w\n%s", err, out)
	}
	if m := regexp.MustCompile(`Non-2xx or 3xx responses: (\d+)`).FindSubmatch(out); m != nil {
		return 0, 0, 0, 0, fmt.Errorf("wrk saw %s failed verifications", m[1])
	}
	rps := regexp.MustCompile(`Requests/sec:\s+([\d.]+)`).FindSubmatch(out)
	total := regexp.MustCompile(`(\d+) requests in`).FindSubmatch(out)
	if rps == nil || total == nil {
		return 0, 0, 0, 0, fmt.Errorf("cannot read wrk output:\n%s", out)
	}
	perSec, _ = strconv.ParseFloat(string(rps[1]), 64)
	n, _ = strconv.Atoi(string(total[1]))
	p50 = wrkPercentile(out, "50%")
	p99 = wrkPercentile(out, "99%")
	return perSec, p50, p99, n, nil
}

func wrkPercentile(out []byte, pct string) time.Duration {
	m := regexp.MustCompile(regexp.QuoteMeta(pct) + `\s+([\d.]+)(us|ms|s)`).FindSubmatch(out)
	if m == nil {
		return 0
	}
	d, _ := time.ParseDuration(string(m[1]) + string(m[2]))
	return d
}
