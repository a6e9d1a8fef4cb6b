package consent

import (
	"container/list"
	"crypto/sha256"
	"encoding/json"
	"slices"
	"strings"
	"sync"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/cost"
	"cel.dev/cel-go/common/overloads"

	"github.com/medchain/medchain/codes"
	"github.com/medchain/medchain/contracts/identity"
	"github.com/medchain/medchain/tx"
)

// Conditions are optional CEL expressions on a grant, evaluated over the request:
//
//	requester string, orgs list(string), category string, purpose string, write bool,
//	time timestamp (the block time, UTC)
//
// e.g. `purpose == "TREAT" && time.getHours() >= 8 && time.getHours() < 18` (hours in UTC). A
// condition must be boolean; any error or overrun at evaluation means the grant does not apply.
//
// Bounds, all checked when the condition is compiled (at CheckTx through Precheck, so that a
// condition that fails them never enters a block): at most MaxConditionBytes of source,
// MaxConditionDepth levels of nesting (the parser stops there, before any deep work),
// MaxConditionNodes AST nodes after macro expansion, and a static cost estimate (with the
// request's fields at their largest) of at most MaxConditionCost. Evaluation is also capped at
// MaxConditionCost at run time (a request from a query may be larger than a block's). Compiled
// programs are cached by the SHA-256 of their source in a bounded LRU of conditionCacheSize.
//
// Determinism: CEL has no clock, randomness or I/O, and timestamp accessors read the time in UTC.
// Accessors with a time-zone argument (time.getHours("Europe/Amsterdam"), and "+01:00" offsets
// alike) are refused at compile time: a named zone is resolved through the host's time zone
// database, which two validators may hold in different versions (or not at all), so they could
// disagree on a decision.
const (
	MaxConditionBytes  = 1024
	MaxConditionCost   = 10_000
	MaxConditionDepth  = 16
	MaxConditionNodes  = 256
	conditionCacheSize = 2048
)

// Largest sizes of the request's fields, for the static cost estimate.
const (
	maxAddressChars = 40
	maxCategoryLen  = 2 * TagBytes // the category variable holds the patient's tag
	maxPurposeLen   = 8            // "CLINTRCH"
)

var celEnv = sync.OnceValues(func() (*cel.Env, error) {
	return cel.NewEnv(
		cel.Variable("requester", cel.StringType),
		cel.Variable("orgs", cel.ListType(cel.StringType)),
		cel.Variable("category", cel.StringType),
		cel.Variable("purpose", cel.StringType),
		cel.Variable("write", cel.BoolType),
		cel.Variable("time", cel.TimestampType),
		cel.ParserExpressionSizeLimit(MaxConditionBytes),
		cel.ParserRecursionLimit(MaxConditionDepth),
		cel.ExpressionNodeLimit(MaxConditionNodes),
		cel.ASTValidators(utcOnly{}, opaqueLiterals{}),
	)
})

// utcOnly refuses timestamp accessors called with a time-zone argument.
type utcOnly struct{}

var timestampAccessors = map[string]bool{
	overloads.TimeGetFullYear: true, overloads.TimeGetMonth: true, overloads.TimeGetDayOfYear: true,
	overloads.TimeGetDate: true, overloads.TimeGetDayOfMonth: true, overloads.TimeGetDayOfWeek: true,
	overloads.TimeGetHours: true, overloads.TimeGetMinutes: true, overloads.TimeGetSeconds: true,
	overloads.TimeGetMilliseconds: true,
}

var zonedOverloads = map[string]bool{
	overloads.TimestampToYearWithTz: true, overloads.TimestampToMonthWithTz: true,
	overloads.TimestampToDayOfYearWithTz: true, overloads.TimestampToDayOfMonthZeroBasedWithTz: true,
	overloads.TimestampToDayOfMonthOneBasedWithTz: true, overloads.TimestampToDayOfWeekWithTz: true,
	overloads.TimestampToHoursWithTz: true, overloads.TimestampToMinutesWithTz: true,
	overloads.TimestampToSecondsWithTz: true, overloads.TimestampToMillisecondsWithTz: true,
}

func (utcOnly) Name() string { return "medchain.validator.utc_only" }

func (utcOnly) Validate(_ *cel.Env, _ cel.ValidatorConfig, a *ast.AST, iss *cel.Issues) {
	for _, e := range ast.MatchDescendants(ast.NavigateAST(a), ast.KindMatcher(ast.CallKind)) {
		call := e.AsCall()
		zoned := false
		for _, id := range a.GetOverloadIDs(e.ID()) {
			zoned = zoned || zonedOverloads[id] || strings.HasSuffix(id, "_with_tz")
		}
		// Belt and braces: by name and arity too, whatever overload the checker picked.
		if timestampAccessors[call.FunctionName()] && call.IsMemberFunction() && len(call.Args()) > 0 {
			zoned = true
		}
		if zoned {
			iss.ReportErrorAtID(e.ID(), "%s with a time zone argument: conditions read the time in UTC only", call.FunctionName())
		}
	}
}

// opaqueLiterals refuses a string literal that is a category's name: a grant's condition is on
// the ledger, where categories appear only as the patient's tags (CategoryTag).
type opaqueLiterals struct{}

func (opaqueLiterals) Name() string { return "medchain.validator.opaque_literals" }

func (opaqueLiterals) Validate(_ *cel.Env, _ cel.ValidatorConfig, a *ast.AST, iss *cel.Issues) {
	for _, e := range ast.MatchDescendants(ast.NavigateAST(a), ast.KindMatcher(ast.LiteralKind)) {
		if s, ok := e.AsLiteral().Value().(string); ok && slices.Contains(Categories, strings.ToLower(strings.TrimSpace(s))) {
			iss.ReportErrorAtID(e.ID(), "a category in clear: conditions name categories by the patient's tags")
		}
	}
}

// sizes bounds the request's fields for the static cost estimate.
type sizes struct{}

func (sizes) EstimateSize(n cost.AstNode) *cost.SizeEstimate {
	var s cost.SizeEstimate
	switch p := n.Path(); strings.Join(p, ".") {
	case "requester", "orgs.@items":
		s = cost.FixedSizeEstimate(maxAddressChars)
	case "orgs":
		s = cost.ListSizeEstimate(cost.RangedSizeEstimate(0, identity.MaxAffiliations), cost.FixedSizeEstimate(maxAddressChars))
	case "category":
		s = cost.RangedSizeEstimate(0, maxCategoryLen)
	case "purpose":
		s = cost.RangedSizeEstimate(0, maxPurposeLen)
	default:
		return nil
	}
	return &s
}

func (sizes) EstimateCallCost(string, string, *cost.AstNode, []cost.AstNode) *cost.CallEstimate {
	return nil
}

// programs caches compiled conditions by the SHA-256 of their source. Compilation is a pure
// function of the source, so the cache (and what it evicts) does not affect results.
var programs = newProgramCache(conditionCacheSize)

// CompileCondition checks a condition and returns its program; errors are Invalid with CEL's
// message.
func CompileCondition(src string) (cel.Program, error) {
	if len(src) > MaxConditionBytes {
		return nil, codes.Errorf(codes.Invalid, "condition over %d bytes", MaxConditionBytes)
	}
	h := sha256.Sum256([]byte(src))
	if p, ok := programs.get(h); ok {
		return p, nil
	}
	p, err := compile(src)
	if err != nil {
		return nil, err
	}
	programs.put(h, p)
	return p, nil
}

// compile does the work of CompileCondition, uncached.
func compile(src string) (cel.Program, error) {
	env, err := celEnv()
	if err != nil {
		return nil, codes.Errorf(codes.Internal, "CEL environment: %v", err)
	}
	// Parse and Check rather than Compile, which formats every error with a source excerpt:
	// for a hostile condition that piles up errors that costs more than compiling it.
	parsed, iss := env.Parse(src)
	var checked *cel.Ast
	if iss == nil || len(iss.Errors()) == 0 {
		checked, iss = env.Check(parsed)
	}
	if iss != nil && len(iss.Errors()) > 0 {
		e := iss.Errors()[0] // the first error only
		if e.Location == nil || e.Location.Line() < 1 {
			return nil, codes.Errorf(codes.Invalid, "condition: %s", e.Message)
		}
		return nil, codes.Errorf(codes.Invalid, "condition: %s (at %d:%d)", e.Message, e.Location.Line(), e.Location.Column()+1)
	}
	if checked.OutputType() != cel.BoolType {
		return nil, codes.Errorf(codes.Invalid, "condition must be boolean, is %v", checked.OutputType())
	}
	est, err := env.EstimateCost(checked, sizes{})
	if err != nil {
		return nil, codes.Errorf(codes.Invalid, "condition: cost: %v", err)
	}
	if est.Max > MaxConditionCost {
		return nil, codes.Errorf(codes.Invalid, "condition may cost up to %d to evaluate, limit %d", est.Max, MaxConditionCost)
	}
	p, err := env.Program(checked, cel.CostLimit(MaxConditionCost))
	if err != nil {
		return nil, codes.Errorf(codes.Invalid, "condition: %v", err)
	}
	return p, nil
}

// Precheck runs the stateless checks of a consent message that are worth doing before a tx
// enters a block: it compiles a grant's condition (bounded, and cached for delivery), so that
// a grant whose condition is malformed, too deep or too expensive is refused at CheckTx and in
// proposals, and never reaches FinalizeBlock. Its result depends only on typ and msg.
func Precheck(typ string, msg json.RawMessage) error {
	if typ != TypeGrant {
		return nil
	}
	var m GrantMsg
	if err := tx.DecodeMsg(msg, &m); err != nil {
		return err
	}
	if m.Condition == "" {
		return nil
	}
	_, err := CompileCondition(m.Condition)
	return err
}

// conditionHolds evaluates a grant's condition for req; anything but a true result is false.
func conditionHolds(src string, req *Request) bool {
	p, err := CompileCondition(src)
	if err != nil {
		return false
	}
	orgs := make([]string, len(req.Orgs))
	for i, o := range req.Orgs {
		orgs[i] = string(o)
	}
	out, _, err := p.Eval(map[string]any{"requester": string(req.Requester), "orgs": orgs, "category": req.Category,
		"purpose": req.Purpose, "write": req.Write, "time": req.At.UTC()})
	if err != nil {
		return false
	}
	b, ok := out.Value().(bool)
	return ok && b
}

// programCache is a least-recently-used cache of compiled programs, safe for concurrent use.
type programCache struct {
	mu    sync.Mutex
	max   int
	order *list.List // of *cacheEntry, most recently used first
	byKey map[[32]byte]*list.Element
}

type cacheEntry struct {
	key [32]byte
	p   cel.Program
}

func newProgramCache(max int) *programCache {
	return &programCache{max: max, order: list.New(), byKey: map[[32]byte]*list.Element{}}
}

func (c *programCache) get(k [32]byte) (cel.Program, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.byKey[k]
	if !ok {
		return nil, false
	}
	c.order.MoveToFront(e)
	return e.Value.(*cacheEntry).p, true
}

func (c *programCache) put(k [32]byte, p cel.Program) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.byKey[k]; ok {
		c.order.MoveToFront(e)
		return
	}
	c.byKey[k] = c.order.PushFront(&cacheEntry{key: k, p: p})
	for c.order.Len() > c.max {
		last := c.order.Back()
		c.order.Remove(last)
		delete(c.byKey, last.Value.(*cacheEntry).key)
	}
}

func (c *programCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.Len()
}
