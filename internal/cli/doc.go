// Package cli is the command-line face every program of this repository
// shares: Main (a signal-bound context, one exit point), a FlagSet whose
// flags fall back to environment variables (so containers configure with
// env and people with flags, and a bad value in the environment is reported
// with every other problem at once), and the logging flags (-log-level,
// -log-format) with the structured logger they build.
package cli
