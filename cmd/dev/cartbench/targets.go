package main

import (
	"fmt"
	"math"
	"strings"
)

// Target is one goal of issue 10 checked against what this run measured:
// a figure, the floor it is compared with (measured in the same run, never
// written down), their ratio and whether the ratio meets the bound. A
// target whose figures could not be measured is reported with Measured
// false and counts as missed, so a broken phase never reads as a pass.
type Target struct {
	Name string `json:"name"`
	// Figure and Floor are what was measured; Unit names both.
	Figure     float64 `json:"figure"`
	FigureWhat string  `json:"figure_what"`
	Floor      float64 `json:"floor"`
	FloorWhat  string  `json:"floor_what"`
	Unit       string  `json:"unit"`
	// Ratio is Figure / Floor.
	Ratio float64 `json:"ratio"`
	// Op is ">=" or "<=": how Ratio must compare with Bound.
	Op    string  `json:"op"`
	Bound float64 `json:"bound"`
	Pass  bool    `json:"pass"`
	// Measured is false when a figure or the floor is missing.
	Measured bool   `json:"measured"`
	Note     string `json:"note,omitempty"`
}

// newTarget computes the ratio and the verdict from the two figures.
func newTarget(name, unit, figureWhat string, figure float64, floorWhat string, floor float64, op string, bound float64) Target {
	t := Target{
		Name: name, Unit: unit, FigureWhat: figureWhat, Figure: figure, FloorWhat: floorWhat, Floor: floor,
		Op: op, Bound: bound, Measured: floor > 0 && !math.IsNaN(figure) && !math.IsInf(figure, 0),
	}
	if t.Measured {
		t.Ratio = figure / floor
		switch op {
		case ">=":
			t.Pass = t.Ratio >= bound
		case "<=":
			t.Pass = t.Ratio <= bound
		}
	}
	return t
}

// unmeasured is a target a phase could not measure, with why.
func unmeasured(name, why string) Target {
	return Target{Name: name, Note: why}
}

// Verdict is PASS, MISS, or NOT MEASURED.
func (t Target) Verdict() string {
	switch {
	case !t.Measured:
		return "NOT MEASURED"
	case t.Pass:
		return "PASS"
	default:
		return "MISS"
	}
}

// fmtFigure prints a figure in its unit with sensible precision.
func fmtFigure(v float64, unit string) string {
	switch unit {
	case "ms":
		return fmtMs(v)
	case "MiB":
		return fmt.Sprintf("%.1f MiB", v)
	case "count":
		return fmt.Sprintf("%.0f", v)
	default:
		switch {
		case v >= 100:
			return fmt.Sprintf("%.0f %s", v, unit)
		case v >= 10:
			return fmt.Sprintf("%.1f %s", v, unit)
		default:
			return fmt.Sprintf("%.2f %s", v, unit)
		}
	}
}

// targetLine is one line of the targets section: figure, floor, ratio,
// target, verdict.
func targetLine(t Target) string {
	if !t.Measured {
		return fmt.Sprintf("%-28s  NOT MEASURED: %s", t.Name, t.Note)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%-28s  %s (%s)  vs  %s (%s)  ratio %.3f  target %s %.2f  %s",
		t.Name, fmtFigure(t.Figure, t.Unit), t.FigureWhat, fmtFigure(t.Floor, t.Unit), t.FloorWhat, t.Ratio, t.Op, t.Bound, t.Verdict())
	if t.Note != "" {
		fmt.Fprintf(&b, "  [%s]", t.Note)
	}
	return b.String()
}
