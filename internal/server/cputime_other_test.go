//go:build !unix

package server_test

import "time"

// processCPU is unknown here; the benchmarks then report no CPU per SET.
func processCPU() time.Duration { return 0 }
