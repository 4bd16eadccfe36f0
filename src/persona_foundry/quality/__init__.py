"""Content quality, measured: diversity, style vs strategy, persona consistency, worst posts.

- `metrics.py`: diversity measures, pure functions (Shaib et al. 2024);
- `style.py`: per-pillar style rates against the strategy;
- `judge.py`: the LLM consistency judge (also the `tweets --judge` gate);
- `report.py`: reads an output folder and measures each persona-month and the batch;
- `render.py` and `svg.py`: rich tables and a self-contained HTML page.
"""

from .report import QualityReport, quality_report

__all__ = ["QualityReport", "quality_report"]
