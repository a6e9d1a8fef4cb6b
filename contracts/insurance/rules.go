package insurance

import (
	"crypto/sha256"
	"encoding/json"
	"sync"

	"strings"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/cost"

	"github.com/medchain/medchain/codes"
	"github.com/medchain/medchain/contracts/consent"
	"github.com/medchain/medchain/tx"
)

// A policy's rule is a CEL expression over one claim item, true when the item is covered. Its
// variables (RuleVariables): service (the service's tag), amount (billed), allowed (what the
// benefit recognizes), day (the date of service, days since 1970), year_paid and deductible_met
// (the member's calendar year so far), all ints in minor units. Example: `amount <= 50000 ||
// year_paid < 100000`. CEL has no clock, randomness or I/O; rules are bounded in size, nesting, nodes and
// cost, compiled at CheckTx (Precheck) and cached by the hash of their source.
const (
	maxRuleCost  = 10_000
	maxRuleDepth = 16
	maxRuleNodes = 256
	ruleCacheMax = 1024
)

// RuleVariables names the variables a policy's rule may read.
var RuleVariables = []string{"service", "amount", "allowed", "day", "year_paid", "deductible_met"}

var ruleEnv = sync.OnceValues(func() (*cel.Env, error) {
	return cel.NewEnv(
		cel.Variable("service", cel.StringType),
		cel.Variable("amount", cel.IntType), cel.Variable("allowed", cel.IntType), cel.Variable("day", cel.IntType),
		cel.Variable("year_paid", cel.IntType), cel.Variable("deductible_met", cel.IntType),
		cel.ParserExpressionSizeLimit(MaxRuleBytes), cel.ParserRecursionLimit(maxRuleDepth), cel.ExpressionNodeLimit(maxRuleNodes),
	)
})

// rules caches compiled rules by the SHA-256 of their source; a full cache starts over
// (compilation is a pure function of the source, so what is cached never changes a result).
var rules = struct {
	sync.Mutex
	m map[[32]byte]cel.Program
}{m: map[[32]byte]cel.Program{}}

// compileRule checks a rule and returns its program; errors are Invalid with CEL's message.
func compileRule(src string) (cel.Program, error) {
	if len(src) > MaxRuleBytes {
		return nil, codes.Errorf(codes.Invalid, "rule over %d bytes", MaxRuleBytes)
	}
	h := sha256.Sum256([]byte(src))
	rules.Lock()
	p, ok := rules.m[h]
	rules.Unlock()
	if ok {
		return p, nil
	}
	env, err := ruleEnv()
	if err != nil {
		return nil, codes.Errorf(codes.Internal, "CEL environment: %v", err)
	}
	parsed, iss := env.Parse(src)
	var checked *cel.Ast
	if iss == nil || len(iss.Errors()) == 0 {
		checked, iss = env.Check(parsed)
	}
	if iss != nil && len(iss.Errors()) > 0 {
		return nil, codes.Errorf(codes.Invalid, "rule: %s", iss.Errors()[0].Message)
	}
	if checked.OutputType() != cel.BoolType {
		return nil, codes.Errorf(codes.Invalid, "rule must be boolean, is %v", checked.OutputType())
	}
	est, err := env.EstimateCost(checked, ruleSizes{})
	if err != nil || est.Max > maxRuleCost {
		return nil, codes.Errorf(codes.Invalid, "rule may cost more than %d to evaluate", maxRuleCost)
	}
	if p, err = env.Program(checked, cel.CostLimit(maxRuleCost)); err != nil {
		return nil, codes.Errorf(codes.Invalid, "rule: %v", err)
	}
	rules.Lock()
	if len(rules.m) >= ruleCacheMax {
		rules.m = map[[32]byte]cel.Program{}
	}
	rules.m[h] = p
	rules.Unlock()
	return p, nil
}

// ruleHolds evaluates a policy's rule for an item; anything but true is false.
func ruleHolds(p cel.Program, it *ClaimItem, allowed int64, day uint32, acc *Accumulator) bool {
	out, _, err := p.Eval(map[string]any{"service": it.Service, "amount": it.Amount, "allowed": allowed,
		"day": int64(day), "year_paid": acc.Paid, "deductible_met": acc.DeductibleMet})
	if err != nil {
		return false
	}
	b, ok := out.Value().(bool)
	return ok && b
}

// Precheck compiles a policy's rule before the transaction enters a block (a pure function of
// the message), so that no unbounded compilation runs inside FinalizeBlock.
func Precheck(typ string, msg json.RawMessage) error {
	if typ != TypeRegisterPolicy {
		return nil
	}
	var m RegisterPolicy
	if err := tx.DecodeMsg(msg, &m); err != nil {
		return err
	}
	if m.Rule == "" {
		return nil
	}
	_, err := compileRule(m.Rule)
	return err
}

// ruleSizes bounds the rule's string variables for the cost estimate.
type ruleSizes struct{}

func (ruleSizes) EstimateSize(n cost.AstNode) *cost.SizeEstimate {
	switch strings.Join(n.Path(), ".") {
	case "service":
		s := cost.FixedSizeEstimate(2 * consent.TagBytes)
		return &s
	}
	return nil
}

func (ruleSizes) EstimateCallCost(string, string, *cost.AstNode, []cost.AstNode) *cost.CallEstimate {
	return nil
}
