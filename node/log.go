package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"

	cmtlog "github.com/cometbft/cometbft/libs/log"
)

// cometSlog sends CometBFT's log lines to the node's slog logger (module=cometbft), so one
// handler sees everything the node logs.
type cometSlog struct{ l *slog.Logger }

var _ cmtlog.Logger = cometSlog{}

func (c cometSlog) Debug(msg string, kv ...any) { c.log(slog.LevelDebug, msg, kv) }
func (c cometSlog) Info(msg string, kv ...any)  { c.log(slog.LevelInfo, msg, kv) }
func (c cometSlog) Warn(msg string, kv ...any)  { c.log(slog.LevelWarn, msg, kv) }
func (c cometSlog) Error(msg string, kv ...any) {
	level := slog.LevelError
	if shutdownNoise(msg, kv) {
		level = slog.LevelDebug
	}
	c.log(level, msg, kv)
}
func (c cometSlog) With(kv ...any) cmtlog.Logger { return cometSlog{c.l.With(kv...)} }

func (c cometSlog) log(level slog.Level, msg string, kv []any) {
	c.l.Log(context.Background(), level, msg, kv...)
}

// shutdownNoise reports whether a CometBFT error line is only the sign of a clean stop: its
// listeners were closed under their accept loops. Logged at error level, it looked like a fault
// on every Ctrl-C.
func shutdownNoise(msg string, kv []any) bool {
	if msg == "Stopped accept routine, as transport is closed" {
		return true
	}
	for i := 1; i < len(kv); i += 2 {
		if err, ok := kv[i].(error); ok && isClosedConn(err) {
			return true
		}
	}
	return false
}

// isClosedConn reports whether err only says that a listener or connection was closed on
// purpose (a server's normal way to end): http.ErrServerClosed or net.ErrClosed ("use of closed
// network connection"), also when only its text survived wrapping.
func isClosedConn(err error) bool {
	return errors.Is(err, http.ErrServerClosed) || errors.Is(err, net.ErrClosed) ||
		strings.Contains(fmt.Sprint(err), net.ErrClosed.Error())
}

// cometLogger is CometBFT's logger on log: at info when config.toml's log_level is info or
// debug, else errors only.
func cometLogger(level string, log *slog.Logger) cmtlog.Logger {
	base := cometSlog{log.With("module", "cometbft")}
	if level == "info" || level == "debug" {
		return cmtlog.NewFilter(base, cmtlog.AllowInfo())
	}
	return cmtlog.NewFilter(base, cmtlog.AllowError())
}
