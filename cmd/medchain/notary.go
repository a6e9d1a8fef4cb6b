package main

import (
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/medchain/medchain/client"
	"github.com/medchain/medchain/contracts/notary"
	"github.com/medchain/medchain/fsutil"
	"github.com/medchain/medchain/notaryproof"
)

func notarizeCmd() *cobra.Command {
	f := &txFlags{}
	var alg, out string
	cmd := &cobra.Command{
		Use:   "notarize FILE...",
		Short: "Notarize documents: anchor their hashes in a block and write each one's proof",
		Long: `Hashes each FILE (SHA-256, or SHA-512 with --alg sha512; the files themselves never leave
this computer), notarizes the hashes in one transaction (up to 1,000 per transaction), and
writes each file's proof beside it (FILE.notary.json, or in --out): the hash's path to the
block's Merkle root, the root's state proof and the signed header that commits it.
` + "`medchain verify-notarized FILE PROOF`" + ` checks a proof offline.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, files []string) error {
			if f.from == "" {
				return fmt.Errorf("--from is required: %w", errUsage)
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 5*time.Minute)
			defer cancel()
			digests := make([][]byte, len(files))
			for i, name := range files {
				d, err := hashFile(name, alg)
				if err != nil {
					return err
				}
				digests[i] = d
			}
			k, err := loadKey(f.home, f.from)
			if err != nil {
				return err
			}
			c := client.New(f.nodeURL)
			s, err := client.NewSigner(ctx, c, k)
			if err != nil {
				return fmt.Errorf("node at %s: %w", f.nodeURL, err)
			}
			w := cmd.OutOrStdout()
			for start := 0; start < len(files); start += notary.MaxDigests {
				end := min(start+notary.MaxDigests, len(files))
				var all []byte
				for _, d := range digests[start:end] {
					all = append(all, d...)
				}
				res, err := s.Send(ctx, notary.TypeNotarize, notary.Notarize{Alg: alg, Digests: all})
				if err != nil {
					return fmt.Errorf("notarize: %w", err)
				}
				for i := start; i < end; i++ {
					p, err := c.ProveNotarized(ctx, s.ChainID, res.Height, alg, digests[i])
					if err != nil {
						return fmt.Errorf("%s: proof: %w", files[i], err)
					}
					path := proofPath(files[i], out)
					raw, _ := json.MarshalIndent(p, "", "  ")
					if err := fsutil.WriteFileAtomic(path, raw, 0o644); err != nil {
						return err
					}
					fmt.Fprintf(w, "%s: notarized in block %d at %s (%s %x); proof %s\n", files[i], p.Block.Height,
						p.Block.Time.UTC().Format(time.RFC3339), alg, digests[i], path)
				}
			}
			return nil
		},
	}
	f.register(cmd)
	cmd.Flags().StringVar(&alg, "alg", notary.SHA256, "hash algorithm: sha256 or sha512")
	cmd.Flags().StringVar(&out, "out", "", "directory for the proofs (default: beside each file)")
	return cmd
}

func verifyNotarizedCmd() *cobra.Command {
	var home, nodeURL string
	cmd := &cobra.Command{
		Use:   "verify-notarized FILE PROOF",
		Short: "Check a notarization proof: when, and in which block, a document existed",
		Long: `Hashes FILE and checks PROOF (written by ` + "`medchain notarize`" + `) offline, against the
validators of --home's genesis: the hash's path to the block's root, the root's state proof,
and the header's signatures by more than 2/3 of those validators. A changed byte fails. If the
network's validators changed since genesis, give --node: the light client then verifies the
header from the home's trust anchor, following the changes.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			raw, err := os.ReadFile(args[1])
			if err != nil {
				return err
			}
			var p notaryproof.Proof
			if err := json.Unmarshal(raw, &p); err != nil {
				return fmt.Errorf("%s is not a notarization proof: %w", args[1], err)
			}
			digest, err := hashFile(args[0], p.Alg)
			if err != nil {
				return err
			}
			trusted, chainID, err := notaryproof.GenesisValidators(home)
			if err != nil {
				return err
			}
			if chainID != p.ChainID {
				return fmt.Errorf("the proof is for chain %q; %s trusts %q", p.ChainID, home, chainID)
			}
			v, err := notaryproof.Verify(&p, digest, trusted)
			if errors.Is(err, notaryproof.ErrUntrustedValidators) && nodeURL != "" {
				ctx, cancel := context.WithTimeout(cmd.Context(), time.Minute)
				defer cancel()
				v, err = client.VerifyNotaryProofOnline(ctx, home, nodeURL, &p, digest)
			}
			if err != nil {
				return fmt.Errorf("%s: NOT VERIFIED: %w", args[0], err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: verified: it existed at %s, notarized in block %d of %s (root %x; header %d signed by %d validators)\n",
				args[0], v.Time.UTC().Format(time.RFC3339), v.Height, p.ChainID, v.Root, v.Height+1, v.Validators)
			return nil
		},
	}
	cmd.Flags().StringVar(&home, "home", ".medchain", "home whose config/genesis.json names the trusted validators")
	cmd.Flags().StringVar(&nodeURL, "node", "", "node(s) to follow validator changes from, if the proof's header was signed by others than genesis's")
	return cmd
}

// hashFile hashes a file's content with alg (sha256 or sha512), streaming.
func hashFile(name, alg string) ([]byte, error) {
	var h hash.Hash
	switch alg {
	case notary.SHA256:
		h = sha256.New()
	case notary.SHA512:
		h = sha512.New()
	default:
		return nil, fmt.Errorf("--alg %q: want sha256 or sha512: %w", alg, errUsage)
	}
	file, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer file.Close()
	if _, err := io.Copy(h, file); err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	return h.Sum(nil), nil
}

// proofPath is where the proof of file goes: beside it, or in dir.
func proofPath(file, dir string) string {
	if dir == "" {
		return file + ".notary.json"
	}
	return filepath.Join(dir, filepath.Base(file)+".notary.json")
}
