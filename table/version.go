package table

// EngineVersion is the version of this engine, recorded in every commit's
// commitInfo.engineInfo as "kappa/<EngineVersion>".
const EngineVersion = "0.1.0"

// EngineInfo is the commitInfo.engineInfo value written by this package.
const EngineInfo = "kappa/" + EngineVersion
