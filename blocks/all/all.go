// Package all registers every block type: the server blank-imports it. A
// locked-down binary imports a subset of the block packages instead.
package all

import (
	_ "github.com/hushflow/hushflow/blocks/app"       // "app"
	_ "github.com/hushflow/hushflow/blocks/code"      // "code"
	_ "github.com/hushflow/hushflow/blocks/delay"     // "delay"
	_ "github.com/hushflow/hushflow/blocks/exec"      // "exec"
	_ "github.com/hushflow/hushflow/blocks/httpblock" // "http"
	_ "github.com/hushflow/hushflow/blocks/logblock"  // "log"
	_ "github.com/hushflow/hushflow/blocks/subflow"   // "flow"
)
