package consent

import (
	"sync"

	"cel.dev/cel-go/cel"

	"github.com/medchain/medchain/codes"
)

// Conditions are optional CEL expressions on a grant, evaluated over the request:
//
//	requester string, orgs list(string), category string, purpose string, write bool,
//	time timestamp (the block time)
//
// e.g. `purpose == "TREAT" && time.getHours("Europe/Amsterdam") < 18`. A condition must be
// boolean; evaluation is bounded by MaxConditionCost and any error or overrun means the grant
// does not apply. CEL has no clock, randomness or I/O, so a condition is deterministic.
const (
	MaxConditionBytes = 1024
	MaxConditionCost  = 10_000
)

var celEnv = sync.OnceValues(func() (*cel.Env, error) {
	return cel.NewEnv(
		cel.Variable("requester", cel.StringType),
		cel.Variable("orgs", cel.ListType(cel.StringType)),
		cel.Variable("category", cel.StringType),
		cel.Variable("purpose", cel.StringType),
		cel.Variable("write", cel.BoolType),
		cel.Variable("time", cel.TimestampType),
	)
})

// programs caches compiled conditions by source. Compilation is a pure function of the source,
// so the cache does not affect results.
var programs sync.Map // string -> cel.Program

// CompileCondition checks a condition and returns its program; errors are Invalid with CEL's
// message.
func CompileCondition(src string) (cel.Program, error) {
	if p, ok := programs.Load(src); ok {
		return p.(cel.Program), nil
	}
	if len(src) > MaxConditionBytes {
		return nil, codes.Errorf(codes.Invalid, "condition over %d bytes", MaxConditionBytes)
	}
	env, err := celEnv()
	if err != nil {
		return nil, codes.Errorf(codes.Internal, "CEL environment: %v", err)
	}
	ast, iss := env.Compile(src)
	if iss != nil && iss.Err() != nil {
		return nil, codes.Errorf(codes.Invalid, "condition: %v", iss.Err())
	}
	if ast.OutputType() != cel.BoolType {
		return nil, codes.Errorf(codes.Invalid, "condition must be boolean, is %v", ast.OutputType())
	}
	p, err := env.Program(ast, cel.CostLimit(MaxConditionCost))
	if err != nil {
		return nil, codes.Errorf(codes.Invalid, "condition: %v", err)
	}
	programs.Store(src, p)
	return p, nil
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
