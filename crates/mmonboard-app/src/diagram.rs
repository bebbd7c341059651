//! A picture of the onboarding state machine as a self-contained SVG document, drawn from the domain's
//! transition table (`mmonboard_domain::transitions`): a box per phase, a frame per stage that holds several
//! phases, and an arrow per edge. An edge the machine declares on a superstate starts at the stage's frame,
//! as statecharts draw it. The phases of a portfolio's path and the edges between them are highlighted, the
//! current phase most of all. Only the layout (which cell a phase sits in) is chosen here; which arrows exist
//! comes from the table, so a new transition appears without touching this file.
//!
//! Written by hand rather than with a graph-layout crate: the machine is small and mostly a chain, and a
//! fixed grid keeps the picture stable from one portfolio to the next (the only thing that changes is the
//! highlighting), which a general layout engine does not promise.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use mmonboard_domain::transitions::{EDGES, Edge, Source};
use mmonboard_domain::{Phase, Stage};

use crate::service::HistoryEntry;

/// The phases a portfolio went through, from `not_started`, one entry per phase change.
pub fn phase_path(history: &[HistoryEntry]) -> Vec<Phase> {
    let mut path = vec![Phase::NotStarted];
    for entry in history {
        if path.last() != Some(&entry.phase_after) {
            path.push(entry.phase_after);
        }
    }
    path
}

/// The state machine as an SVG document. `path` is the phases taken, in order (as `phase_path` gives
/// them); its last phase is the current one. An empty path highlights nothing.
pub fn state_machine_svg(path: &[Phase]) -> String {
    let layout = Layout::new();
    let visited: BTreeSet<Phase> = path.iter().copied().collect();
    let current = path.last().copied();
    let taken = taken_edges(path);

    let mut svg = String::new();
    let _ = write!(
        svg,
        r##"<svg xmlns="http://www.w3.org/2000/svg" class="state-machine" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" aria-label="{label}" font-family="system-ui, -apple-system, 'Segoe UI', sans-serif">"##,
        width = layout.width,
        height = layout.height,
        label = escape(&aria_label(current)),
    );
    svg.push_str(concat!(
        r##"<defs>"##,
        r##"<marker id="mmsm-arrow" viewBox="0 0 10 10" refX="9" refY="5" markerUnits="userSpaceOnUse" markerWidth="9" markerHeight="9" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#9ca3af"/></marker>"##,
        r##"<marker id="mmsm-arrow-taken" viewBox="0 0 10 10" refX="9" refY="5" markerUnits="userSpaceOnUse" markerWidth="9" markerHeight="9" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#2563eb"/></marker>"##,
        r##"</defs>"##,
    ));

    for (stage, frame) in &layout.frames {
        let _ = write!(
            svg,
            r##"<g class="stage" data-stage="{name}"><rect x="{x}" y="{y}" width="{w}" height="{h}" rx="10" fill="#f9fafb" stroke="#d1d5db" stroke-dasharray="5 4"/><text x="{tx}" y="{ty}" font-size="11" font-weight="600" fill="#6b7280">{label}</text></g>"##,
            name = stage.as_str(),
            x = frame.x,
            y = frame.y,
            w = frame.w,
            h = frame.h,
            tx = frame.x + 10,
            ty = frame.y + 15,
            label = escape(&words(stage.as_str())),
        );
    }

    for arrow in layout.arrows() {
        let is_taken = arrow.edges.iter().any(|edge| taken.contains(edge));
        let (stroke, marker, width) = if is_taken {
            ("#2563eb", "mmsm-arrow-taken", 2.5)
        } else {
            ("#9ca3af", "mmsm-arrow", 1.2)
        };
        let events: Vec<&str> = arrow.edges.iter().map(|edge| EDGES[*edge].event).collect();
        let label = events.join(" / ");
        let (from, to) = (arrow.from, arrow.to);
        let _ = write!(
            svg,
            r##"<g class="edge{taken_class}" data-events="{events}"><title>{title}</title><line x1="{x1:.1}" y1="{y1:.1}" x2="{x2:.1}" y2="{y2:.1}" stroke="{stroke}" stroke-width="{width}" marker-end="url(#{marker})"/>"##,
            taken_class = if is_taken { " taken" } else { "" },
            events = escape(&label),
            title = escape(&arrow.title),
            x1 = from.0,
            y1 = from.1,
            x2 = to.0,
            y2 = to.1,
        );
        let (mid_x, mid_y) = ((from.0 + to.0) / 2.0, (from.1 + to.1) / 2.0);
        let (lx, ly, anchor) = if (to.0 - from.0).abs() > (to.1 - from.1).abs() {
            (mid_x, mid_y - 5.0, "middle")
        } else {
            (mid_x + 7.0, mid_y + 4.0, "start")
        };
        let _ = write!(
            svg,
            r##"<text x="{lx:.1}" y="{ly:.1}" font-size="10" text-anchor="{anchor}" fill="{fill}">{label}</text></g>"##,
            fill = if is_taken { "#1d4ed8" } else { "#6b7280" },
            label = escape(&label),
        );
    }

    for phase in Phase::ALL {
        let cell = layout.cell(phase);
        let state = if Some(phase) == current {
            "current"
        } else if visited.contains(&phase) {
            "visited"
        } else {
            "other"
        };
        let (fill, stroke, stroke_width, text) = match state {
            "current" => ("#2563eb", "#1e3a8a", 3.0, "#ffffff"),
            "visited" => ("#dbeafe", "#2563eb", 1.5, "#1e3a8a"),
            _ => ("#ffffff", "#9ca3af", 1.0, "#374151"),
        };
        let _ = write!(
            svg,
            r##"<g class="phase" data-phase="{name}" data-state="{state}"><title>{title}</title><rect x="{x}" y="{y}" width="{w}" height="{h}" rx="6" fill="{fill}" stroke="{stroke}" stroke-width="{stroke_width}"/><text x="{tx}" y="{ty}" font-size="13" text-anchor="middle" fill="{text}"{weight}>{label}</text></g>"##,
            name = phase.as_str(),
            title = escape(&format!("{}: {}", phase.as_str(), phase.next_action())),
            x = cell.x,
            y = cell.y,
            w = NODE_W,
            h = NODE_H,
            tx = cell.x + NODE_W / 2,
            ty = cell.y + NODE_H / 2 + 5,
            weight = if state == "current" {
                r#" font-weight="700""#
            } else {
                ""
            },
            label = escape(&words(phase.as_str())),
        );
    }
    svg.push_str("</svg>");
    svg
}

fn aria_label(current: Option<Phase>) -> String {
    match current {
        Some(phase) => format!(
            "The onboarding state machine; the portfolio is in {}",
            words(phase.as_str())
        ),
        None => "The onboarding state machine".to_owned(),
    }
}

/// The indexes in `EDGES` of the edges the path took: for each change of phase, the edge from that very
/// phase if there is one, else the superstate edge that covers it. A step no edge explains highlights none.
fn taken_edges(path: &[Phase]) -> BTreeSet<usize> {
    let mut taken = BTreeSet::new();
    for step in path.windows(2) {
        let (from, to) = (step[0], step[1]);
        if from == to {
            continue;
        }
        let direct = EDGES
            .iter()
            .position(|edge| edge.source == Source::Phase(from) && edge.to == to);
        let covering = || {
            EDGES
                .iter()
                .position(|edge| edge.to == to && edge.source.phases().contains(&from))
        };
        if let Some(index) = direct.or_else(covering) {
            taken.insert(index);
        }
    }
    taken
}

/// `entering_business_info` → `entering business info`.
fn words(name: &str) -> String {
    name.replace('_', " ")
}

/// Text for SVG/XML text and attribute values.
fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            other => escaped.push(other),
        }
    }
    escaped
}

const NODE_W: i32 = 200;
const NODE_H: i32 = 32;
const COLUMN_X: [i32; 3] = [150, 400, 650];
const TOP: i32 = 16;
const ROW_STEP: i32 = 60;
/// Extra room between rows of different stages, for the frames' borders and titles.
const STAGE_GAP: i32 = 30;
const FRAME_LEFT: i32 = 24;
const FRAME_TITLE: i32 = 24;
const FRAME_PAD: i32 = 12;

/// Which grid cell (column, row) a phase sits in: the main chain down column 0, the side branch beside it,
/// the end of every path to the right. The match is exhaustive, so a new phase must be placed.
fn grid(phase: Phase) -> (usize, i32) {
    match phase {
        Phase::NotStarted => (0, 0),
        Phase::CheckingEligibility => (0, 1),
        Phase::MigratingObo => (0, 2),
        Phase::Ineligible => (1, 2),
        Phase::ReviewingPermissions => (0, 3),
        Phase::EnteringBusinessInfo => (0, 4),
        Phase::TermsPending => (0, 5),
        Phase::Connecting => (0, 6),
        Phase::Connected => (0, 7),
        Phase::SyncingConfig => (0, 8),
        Phase::Live => (0, 9),
        Phase::Offboarded => (2, 5),
    }
}

#[derive(Debug, Clone, Copy)]
struct Rect {
    x: i32,
    y: i32,
    w: i32,
    h: i32,
}

impl Rect {
    fn center(self) -> (f64, f64) {
        (
            f64::from(self.x) + f64::from(self.w) / 2.0,
            f64::from(self.y) + f64::from(self.h) / 2.0,
        )
    }

    fn contains(self, other: Rect) -> bool {
        other.x >= self.x
            && other.y >= self.y
            && other.x + other.w <= self.x + self.w
            && other.y + other.h <= self.y + self.h
    }

    /// Where the line from this rectangle's centre towards `toward` leaves it.
    fn border_toward(self, toward: (f64, f64)) -> (f64, f64) {
        let (cx, cy) = self.center();
        let (dx, dy) = (toward.0 - cx, toward.1 - cy);
        let half_w = f64::from(self.w) / 2.0;
        let half_h = f64::from(self.h) / 2.0;
        let scale_x = if dx == 0.0 {
            f64::INFINITY
        } else {
            half_w / dx.abs()
        };
        let scale_y = if dy == 0.0 {
            f64::INFINITY
        } else {
            half_h / dy.abs()
        };
        let scale = scale_x.min(scale_y).min(1.0);
        (cx + dx * scale, cy + dy * scale)
    }
}

/// One drawn arrow: the edges (indexes into `EDGES`) it stands for, from where to where.
struct Arrow {
    edges: Vec<usize>,
    from: (f64, f64),
    to: (f64, f64),
    title: String,
}

struct Layout {
    cells: BTreeMap<Phase, Rect>,
    frames: Vec<(Stage, Rect)>,
    width: i32,
    height: i32,
}

impl Layout {
    fn new() -> Self {
        let last_row = Phase::ALL
            .into_iter()
            .map(|phase| grid(phase).1)
            .max()
            .unwrap_or(0);
        // A row's stage is the stage of the phase in its first column; a row of another stage than the one
        // above it starts lower, so the frames do not touch.
        let mut row_y = Vec::new();
        let mut y = TOP;
        let mut previous_stage = None;
        for row in 0..=last_row {
            let stage = Phase::ALL
                .into_iter()
                .find(|phase| grid(*phase) == (0, row))
                .map(Phase::stage);
            if row > 0 {
                y += ROW_STEP;
                if stage.is_some() && previous_stage.is_some() && stage != previous_stage {
                    y += STAGE_GAP;
                }
            }
            row_y.push(y);
            previous_stage = stage.or(previous_stage);
        }
        let cells: BTreeMap<Phase, Rect> = Phase::ALL
            .into_iter()
            .map(|phase| {
                let (column, row) = grid(phase);
                let y = usize::try_from(row)
                    .ok()
                    .and_then(|row| row_y.get(row))
                    .copied()
                    .unwrap_or(TOP);
                let rect = Rect {
                    x: COLUMN_X[column],
                    y,
                    w: NODE_W,
                    h: NODE_H,
                };
                (phase, rect)
            })
            .collect();
        let frames: Vec<(Stage, Rect)> = Stage::ALL
            .into_iter()
            .filter(|stage| stage.phases().count() > 1)
            .map(|stage| {
                let members: Vec<Rect> = stage.phases().map(|phase| cells[&phase]).collect();
                let top = members.iter().map(|cell| cell.y).min().unwrap_or(0);
                let bottom = members
                    .iter()
                    .map(|cell| cell.y + cell.h)
                    .max()
                    .unwrap_or(0);
                let right = members
                    .iter()
                    .map(|cell| cell.x + cell.w)
                    .max()
                    .unwrap_or(0);
                let frame = Rect {
                    x: FRAME_LEFT,
                    y: top - FRAME_TITLE,
                    w: right + FRAME_PAD - FRAME_LEFT,
                    h: bottom - top + FRAME_TITLE + FRAME_PAD,
                };
                (stage, frame)
            })
            .collect();
        let width = cells
            .values()
            .map(|cell| cell.x + cell.w)
            .chain(frames.iter().map(|(_, frame)| frame.x + frame.w))
            .max()
            .unwrap_or(0)
            + FRAME_LEFT;
        let height = cells
            .values()
            .map(|cell| cell.y + cell.h)
            .chain(frames.iter().map(|(_, frame)| frame.y + frame.h))
            .max()
            .unwrap_or(0)
            + TOP;
        Self {
            cells,
            frames,
            width,
            height,
        }
    }

    fn cell(&self, phase: Phase) -> Rect {
        self.cells[&phase]
    }

    fn frame(&self, stage: Stage) -> Option<Rect> {
        self.frames
            .iter()
            .find(|(framed, _)| *framed == stage)
            .map(|(_, frame)| *frame)
    }

    /// The arrows: edges between the same two phases share one (their events joined); a superstate edge
    /// gets one arrow per stage frame it starts from.
    fn arrows(&self) -> Vec<Arrow> {
        let mut between_phases: BTreeMap<(Phase, Phase), Vec<usize>> = BTreeMap::new();
        let mut arrows = Vec::new();
        for (index, edge) in EDGES.iter().enumerate() {
            match edge.source {
                Source::Phase(from) => between_phases
                    .entry((from, edge.to))
                    .or_default()
                    .push(index),
                Source::Stages(stages) => {
                    for stage in stages {
                        if let Some(arrow) = self.stage_arrow(index, edge, *stage) {
                            arrows.push(arrow);
                        }
                    }
                }
            }
        }
        for ((from, to), edges) in between_phases {
            let (source, target) = (self.cell(from), self.cell(to));
            let start = source.border_toward(target.center());
            let end = target.border_toward(source.center());
            let events: Vec<&str> = edges.iter().map(|index| EDGES[*index].event).collect();
            arrows.push(Arrow {
                edges,
                from: start,
                to: end,
                title: format!(
                    "{} → {} on {}",
                    from.as_str(),
                    to.as_str(),
                    events.join(" or ")
                ),
            });
        }
        arrows
    }

    /// An arrow from a stage's frame: into a phase inside it from the frame's left border (or from its top,
    /// for a phase beside the main column), or out to a phase outside from its right border.
    fn stage_arrow(&self, index: usize, edge: &Edge, stage: Stage) -> Option<Arrow> {
        let target = self.cell(edge.to);
        let title = format!(
            "any phase of {} → {} on {}",
            stage.as_str(),
            edge.to.as_str(),
            edge.event
        );
        let Some(frame) = self.frame(stage) else {
            // A stage of one phase has no frame: the arrow starts at that phase.
            let from = stage.phases().next()?;
            let source = self.cell(from);
            return Some(Arrow {
                edges: vec![index],
                from: source.border_toward(target.center()),
                to: target.border_toward(source.center()),
                title,
            });
        };
        let (target_x, target_y) = target.center();
        let (from, to) = if frame.contains(target) {
            if target.x == COLUMN_X[0] {
                (
                    (f64::from(frame.x), target_y),
                    (f64::from(target.x), target_y),
                )
            } else {
                (
                    (target_x, f64::from(frame.y)),
                    (target_x, f64::from(target.y)),
                )
            }
        } else {
            let (_, frame_y) = frame.center();
            let start = (f64::from(frame.x + frame.w), frame_y);
            (start, target.border_toward(start))
        };
        Some(Arrow {
            edges: vec![index],
            from,
            to,
            title,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mmonboard_domain::transitions::transitions;

    fn count(haystack: &str, needle: &str) -> usize {
        haystack.matches(needle).count()
    }

    #[test]
    fn every_phase_is_drawn_once_in_its_own_cell() {
        let svg = state_machine_svg(&[]);
        for phase in Phase::ALL {
            assert_eq!(
                count(&svg, &format!(r#"data-phase="{}""#, phase.as_str())),
                1,
                "{phase}"
            );
        }
        let layout = Layout::new();
        let cells: BTreeSet<(i32, i32)> =
            layout.cells.values().map(|cell| (cell.x, cell.y)).collect();
        assert_eq!(cells.len(), Phase::ALL.len(), "no two phases share a cell");
        for (stage, frame) in &layout.frames {
            for phase in stage.phases() {
                assert!(frame.contains(layout.cell(phase)), "{phase} in {stage}");
            }
            for phase in Phase::ALL
                .into_iter()
                .filter(|phase| phase.stage() != *stage)
            {
                assert!(
                    !frame.contains(layout.cell(phase)),
                    "{phase} outside {stage}"
                );
            }
        }
    }

    #[test]
    fn every_edge_of_the_table_is_drawn() {
        let svg = state_machine_svg(&[]);
        let layout = Layout::new();
        let drawn: BTreeSet<usize> = layout
            .arrows()
            .iter()
            .flat_map(|arrow| arrow.edges.clone())
            .collect();
        assert_eq!(drawn.len(), EDGES.len());
        for edge in EDGES {
            assert!(svg.contains(edge.event), "{edge:?}");
        }
        // One arrow per stage a superstate edge starts from.
        let offboarded_arrows = count(&svg, r#"data-events="onboarding_offboarded""#);
        assert_eq!(offboarded_arrows, 3);
        assert_eq!(count(&svg, "<svg"), 1);
        assert!(svg.ends_with("</svg>"));
    }

    #[test]
    fn nothing_is_highlighted_without_a_path() {
        let svg = state_machine_svg(&[]);
        assert_eq!(count(&svg, r#"data-state="current""#), 0);
        assert_eq!(count(&svg, r#"data-state="visited""#), 0);
        assert_eq!(count(&svg, r#"class="edge taken""#), 0);
    }

    #[test]
    fn the_path_and_the_current_phase_are_highlighted() {
        let path = [
            Phase::NotStarted,
            Phase::CheckingEligibility,
            Phase::MigratingObo,
            Phase::ReviewingPermissions,
            Phase::EnteringBusinessInfo,
            Phase::TermsPending,
        ];
        let svg = state_machine_svg(&path);
        assert!(svg.contains(r#"data-phase="terms_pending" data-state="current""#));
        for phase in &path[..path.len() - 1] {
            assert!(
                svg.contains(&format!(
                    r#"data-phase="{}" data-state="visited""#,
                    phase.as_str()
                )),
                "{phase}"
            );
        }
        assert!(svg.contains(r#"data-phase="live" data-state="other""#));
        // started; eligibility checked (from the stage) into migrating_obo; migrated (the direct edge, not the
        // stage's re-check); permissions; business information.
        assert_eq!(count(&svg, r#"class="edge taken""#), 5);
        assert!(svg.contains(r#"class="edge taken" data-events="obo_waba_migrated""#));
        assert!(!svg.contains(r#"class="edge taken" data-events="terms_accepted / terms_signed""#));
    }

    #[test]
    fn an_offboarding_highlights_the_arrow_from_the_stage_it_left() {
        let svg = state_machine_svg(&[
            Phase::NotStarted,
            Phase::CheckingEligibility,
            Phase::ReviewingPermissions,
            Phase::EnteringBusinessInfo,
            Phase::TermsPending,
            Phase::Connecting,
            Phase::Connected,
            Phase::Offboarded,
        ]);
        let taken = taken_edges(&[Phase::Connected, Phase::Offboarded]);
        assert_eq!(taken.len(), 1);
        let layout = Layout::new();
        let enabled_frame = layout.frame(Stage::Enabled).expect("a frame");
        let arrow = layout
            .arrows()
            .into_iter()
            .find(|arrow| {
                arrow.edges.iter().any(|edge| taken.contains(edge))
                    && arrow.from
                        == (
                            f64::from(enabled_frame.x + enabled_frame.w),
                            enabled_frame.center().1,
                        )
            })
            .expect("an arrow from the enabled frame");
        assert!(arrow.title.contains("enabled"));
        assert!(svg.contains(r#"data-phase="offboarded" data-state="current""#));
    }

    #[test]
    fn a_step_no_edge_explains_highlights_no_edge() {
        assert!(taken_edges(&[Phase::NotStarted, Phase::Live]).is_empty());
        assert_eq!(
            taken_edges(&[Phase::NotStarted, Phase::CheckingEligibility]).len(),
            1
        );
        // Every transition of the table highlights exactly one edge.
        for transition in transitions() {
            assert_eq!(
                taken_edges(&[transition.from, transition.to]).len(),
                1,
                "{transition:?}"
            );
        }
    }

    #[test]
    fn the_path_of_a_history_starts_unstarted_and_lists_each_change_once() {
        assert_eq!(phase_path(&[]), vec![Phase::NotStarted]);
    }

    #[test]
    fn text_is_escaped() {
        assert_eq!(escape(r#"a<b & "c"'"#), "a&lt;b &amp; &quot;c&quot;&#39;");
    }
}
