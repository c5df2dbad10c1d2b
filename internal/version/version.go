// Package version holds the Kappa release version, used in commitInfo.engineInfo
// and printed by `kappa version`.
package version

// Version is the Kappa release version.
const Version = "0.1.0"

// EngineInfo is the engineInfo string written into every commitInfo, "kappa/<version>".
func EngineInfo() string { return "kappa/" + Version }
