package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/medchain/medchain/keyring"
	"github.com/medchain/medchain/node"
)

// Passphrases come from MEDCHAIN_PASSPHRASE, else a hidden prompt on a terminal. Dev keys
// (unencrypted) need none.
const passphraseEnv = "MEDCHAIN_PASSPHRASE"

func readPassphrase(prompt string) (string, error) {
	if p, ok := os.LookupEnv(passphraseEnv); ok {
		return p, nil
	}
	return readTerminal(prompt, "set "+passphraseEnv+" or run on a terminal")
}

// readTerminal asks for a secret on the terminal; without one it fails with hint.
func readTerminal(prompt, hint string) (string, error) {
	if !term.IsTerminal(int(os.Stdin.Fd())) {
		return "", fmt.Errorf("no passphrase: %s", hint)
	}
	fmt.Fprint(os.Stderr, prompt)
	b, err := term.ReadPassword(int(os.Stdin.Fd()))
	fmt.Fprintln(os.Stderr)
	return string(b), err
}

// newPassphrase asks twice on a terminal. An empty passphrase makes an unencrypted dev key.
func newPassphrase() (string, error) {
	return askNewPassphrase(fmt.Sprintf("set %s (empty for an unencrypted dev key) or run on a terminal", passphraseEnv))
}

// newPassphraseFrom reads a new key's passphrase from file if given (its content without one
// trailing newline), else as newPassphrase does; for commands with a --passphrase-file flag.
func newPassphraseFrom(file string) (string, error) {
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("passphrase file: %w", err)
		}
		p := strings.TrimSuffix(string(b), "\n")
		return strings.TrimSuffix(p, "\r"), nil
	}
	return askNewPassphrase(fmt.Sprintf("use --passphrase-file FILE or set %s (empty for an unencrypted dev key), or run on a terminal", passphraseEnv))
}

func askNewPassphrase(hint string) (string, error) {
	if p, ok := os.LookupEnv(passphraseEnv); ok {
		return p, nil
	}
	if !term.IsTerminal(int(os.Stdin.Fd())) {
		return "", fmt.Errorf("no passphrase: %s", hint)
	}
	p1, err := readPassphrase("new passphrase (empty = unencrypted dev key): ")
	if err != nil {
		return "", err
	}
	p2, err := readPassphrase("repeat passphrase: ")
	if err != nil {
		return "", err
	}
	if p1 != p2 {
		return "", fmt.Errorf("passphrases differ")
	}
	return p1, nil
}

// passphraseHelp documents, in a command's --help, where the passphrase of the key it creates
// comes from.
func passphraseHelp(what string) string {
	return "The passphrase that encrypts " + what + ` comes from, in this order: --passphrase-file
(the file's content without a trailing newline), the ` + passphraseEnv + ` environment variable, or a
prompt on a terminal (asked twice). An empty passphrase makes an unencrypted dev key. Without a
terminal (scripts, CI, systemd) use the file or the variable.`
}

// loadKey decrypts a key from the home's keyring, asking for a passphrase only if it needs one.
func loadKey(home, name string) (*keyring.Key, error) {
	kr, err := keyring.OpenFile(node.KeyringDir(home))
	if err != nil {
		return nil, err
	}
	pub, err := kr.Show(name)
	if err != nil {
		return nil, err
	}
	pass := ""
	if !pub.DevUnlocked {
		if pass, err = readPassphrase(fmt.Sprintf("passphrase for key %q: ", name)); err != nil {
			return nil, err
		}
	}
	return kr.Get(name, pass)
}

func keysCmd() *cobra.Command {
	var home string
	cmd := &cobra.Command{Use: "keys", Short: "Manage account keys in a home's keyring"}
	cmd.PersistentFlags().StringVar(&home, "home", ".medchain", "home whose keyring to use")
	open := func() (*keyring.File, error) { return keyring.OpenFile(node.KeyringDir(home)) }

	add := &cobra.Command{
		Use: "add NAME", Short: "Create a key (Ed25519 signing + X25519 encryption) under a passphrase", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			kr, err := open()
			if err != nil {
				return err
			}
			pass, err := newPassphrase()
			if err != nil {
				return err
			}
			k, err := kr.Create(args[0], pass)
			if err != nil {
				return err
			}
			note := ""
			if pass == "" {
				note = "  (UNENCRYPTED dev key)"
			}
			fmt.Fprintf(cmd.OutOrStdout(), "created key %s: address %s%s\n", k.Name, k.Address, note)
			return nil
		},
	}
	list := &cobra.Command{
		Use: "list", Short: "List keys", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			kr, err := open()
			if err != nil {
				return err
			}
			keys, err := kr.List()
			if err != nil {
				return err
			}
			for _, k := range keys {
				mark := ""
				if k.DevUnlocked {
					mark = "  UNENCRYPTED-DEV"
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%-14s %s%s\n", k.Name, k.Address, mark)
			}
			return nil
		},
	}
	var addrOnly bool
	show := &cobra.Command{
		Use: "show NAME", Short: "Show a key's address and public keys", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			kr, err := open()
			if err != nil {
				return err
			}
			p, err := kr.Show(args[0])
			if err != nil {
				return err
			}
			if addrOnly {
				fmt.Fprintln(cmd.OutOrStdout(), p.Address)
				return nil
			}
			fmt.Fprintf(cmd.OutOrStdout(), "name:           %s\naddress:        %s\nsigning key:    %s\nencryption key: %s\nencrypted:      %t\n",
				p.Name, p.Address, base64.StdEncoding.EncodeToString(p.SigningKey), base64.StdEncoding.EncodeToString(p.EncryptionKey), !p.DevUnlocked)
			return nil
		},
	}
	show.Flags().BoolVar(&addrOnly, "address", false, "print only the address")
	export := &cobra.Command{
		Use: "export-pub NAME", Short: "Print a key's public half as JSON (safe to share)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			kr, err := open()
			if err != nil {
				return err
			}
			p, err := kr.Show(args[0])
			if err != nil {
				return err
			}
			p.DevUnlocked = false
			enc := json.NewEncoder(cmd.OutOrStdout())
			enc.SetIndent("", "  ")
			return enc.Encode(p)
		},
	}
	cmd.AddCommand(add, list, show, export)
	return cmd
}

func trimAddr(s string) string { return strings.TrimSpace(strings.ToLower(s)) }
