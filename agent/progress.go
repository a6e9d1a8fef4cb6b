package agent

import (
	"context"
	"strconv"
	"strings"
)

// Progress is a step of a search the agent reports while it works (see WithProgress): the
// records it found, its access requests going to the ledger and their block, the records opened.
type Progress struct {
	Step string // StepFound, StepAsking, StepCommitted or StepOpened
	Text string // the step in words, for people (no health data: counts and heights only)
}

// Progress steps.
const (
	StepFound     = "found"
	StepAsking    = "asking"
	StepCommitted = "committed"
	StepOpened    = "opened"
)

type progressKey struct{}

// WithProgress returns a context whose searches report their steps to fn, in order, from the
// searching goroutine.
func WithProgress(ctx context.Context, fn func(Progress)) context.Context {
	return context.WithValue(ctx, progressKey{}, fn)
}

func report(ctx context.Context, step, text string) {
	if fn, ok := ctx.Value(progressKey{}).(func(Progress)); ok {
		fn(Progress{Step: step, Text: text})
	}
}

// count is n things in words: "1 record", "2 records", "1 category", "3 categories".
func count(n int, thing string) string {
	if n == 1 {
		return "1 " + thing
	}
	if plural, ok := strings.CutSuffix(thing, "y"); ok {
		return strconv.Itoa(n) + " " + plural + "ies"
	}
	return strconv.Itoa(n) + " " + thing + "s"
}
