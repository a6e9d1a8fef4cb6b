package client

import (
	"fmt"

	"github.com/cometbft/cometbft/types"
)

func valSetOf(vals []*types.Validator) (*types.ValidatorSet, error) {
	set := types.NewValidatorSet(vals)
	if err := set.ValidateBasic(); err != nil {
		return nil, fmt.Errorf("validator set: %w", err)
	}
	return set, nil
}
