package engine

// testEngine compiles the programs of this package's tests: no sandbox
// (sandboxed cases pass WithSandbox).
var testEngine = New(Config{})
