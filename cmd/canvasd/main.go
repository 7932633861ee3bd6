// Command canvasd is the canvasd sync server.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := dispatch(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// dispatch runs the subcommand args name (the server when none) and
// returns the exit code.
func dispatch(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var err error
	cmd := ""
	if len(args) > 0 {
		cmd = args[0]
	}
	switch cmd {
	case "token":
		err = runToken(args[1:], stdout)
	case "migrate":
		err = runMigrate(ctx, args[1:], stdout)
	case "healthcheck":
		err = runHealthcheck(ctx, args[1:], stdout)
	case "version", "-version", "--version":
		_, err = fmt.Fprintln(stdout, versionString())
	case "help":
		err = run(ctx, []string{"--help"})
	default:
		err = run(ctx, args)
	}
	if errors.Is(err, flag.ErrHelp) { // the usage is printed
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "canvasd:", err)
		return 1
	}
	return 0
}
