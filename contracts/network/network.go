// Package network is the consortium's membership on the ledger: which organizations' nodes take
// part and with what voting power. A registrar proposes adding a node, removing one, changing its
// power or rotating its consensus key; two thirds of the registrars approve; the app turns each
// executed change into a CometBFT validator update (effective two heights later) and gives a
// joining node an account of role node (its fetch log, replication) and retires a leaving one.
package network

import (
	"crypto/ed25519"
	"encoding/base64"
	"time"

	"github.com/medchain/medchain/tx"
)

// Transaction types.
const (
	TypePropose = "network/propose"
	TypeVote    = "network/vote"
)

// Actions of a proposal.
const (
	ActionAdd    = "add"    // a new node: PubKey, Power (0 = a full node that does not vote), Name
	ActionRemove = "remove" // a member leaves: PubKey
	ActionPower  = "power"  // a member's voting power changes: PubKey, Power
	ActionRotate = "rotate" // a member's consensus key is replaced: PubKey, NewPubKey
)

// Bounds.
const (
	MaxPower         = 1000
	MaxMembers       = 256
	MaxNameBytes     = 128
	ProposalLifetime = 7 * 24 * time.Hour
	// UpdateEvent is the event an executed change emits for every validator power change; the app
	// collects them into FinalizeBlock's validator updates.
	UpdateEvent = "network.validator_update"
)

// Member is a node of the network. Its account (role node) is the address of its consensus key.
type Member struct {
	Address     tx.Address        `json:"address"`
	PubKey      ed25519.PublicKey `json:"pub_key"`
	Power       int64             `json:"power"` // 0: a full node
	Name        string            `json:"name"`
	AddedHeight int64             `json:"added_height"`
}

// Propose proposes a membership change; the proposer's vote counts.
type Propose struct {
	Action    string            `json:"action"`
	PubKey    ed25519.PublicKey `json:"pub_key"`
	NewPubKey ed25519.PublicKey `json:"new_pub_key,omitempty"`
	Power     int64             `json:"power,omitempty"`
	Name      string            `json:"name,omitempty"`
}

// Vote approves an open proposal.
type Vote struct {
	Proposal uint64 `json:"proposal"`
}

// Proposal is a pending or executed membership change.
type Proposal struct {
	ID        uint64       `json:"id"`
	Change    Propose      `json:"change"`
	Proposer  tx.Address   `json:"proposer"`
	Votes     []tx.Address `json:"votes"`
	CreatedAt time.Time    `json:"created_at"`
	ExpiresAt time.Time    `json:"expires_at"`
	Status    string       `json:"status"` // "open", "executed"
}

// KeyString renders a consensus public key as genesis.json and CometBFT RPC show it (base64).
func KeyString(k ed25519.PublicKey) string { return base64.StdEncoding.EncodeToString(k) }
