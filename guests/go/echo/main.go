// Command echo is the Go counterpart of Wetware's TinyGo echo example, built
// with Go's own wasip1 port (GOOS=wasip1 GOARCH=wasm) by
// scripts/build-guests.sh into target/guests/out/go-echo.wasm.
//
// With arguments it prints them, separated by spaces, on one line (as
// echo(1) does); without, it copies stdin to stdout. Go's runtime reads the
// clock and random numbers before main runs, so the program needs both
// from its host, as every Go and TinyGo program does.
package main

import (
	"fmt"
	"io"
	"os"
	"strings"
)

func main() {
	if len(os.Args) > 1 {
		fmt.Println(strings.Join(os.Args[1:], " "))
		return
	}
	if _, err := io.Copy(os.Stdout, os.Stdin); err != nil {
		fmt.Fprintln(os.Stderr, "echo:", err)
		os.Exit(1)
	}
}
