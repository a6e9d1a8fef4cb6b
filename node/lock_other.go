//go:build !unix

package node

import "os"

// tryLock takes no lock where flock is missing; the state database's own lock still refuses a
// second node on the home, with its rawer message.
func tryLock(*os.File) error { return nil }
