// Command hello is the floor of the CLI latency benchmark: a static Go
// binary that prints one line and exits.
package main

import "fmt"

func main() {
	fmt.Println("hello, world")
}
