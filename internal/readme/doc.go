// Package readme holds no code: its tests keep the library example in the
// repository's README.md compiling and correct. The example function lives in
// example_test.go between "// README:begin" and "// README:end" markers, and
// TestREADMEShowsExample checks that README.md shows exactly that code.
package readme
