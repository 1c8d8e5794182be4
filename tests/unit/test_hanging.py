"""The hanging rule: the latest series of each kind within the opened study, up to four."""
from __future__ import annotations

from dataclasses import dataclass, field

from medviewer.core.hanging import choose_layout, describe_choice, series_facts
from tests.support.compare_study import SeriesSpec, write_study


@dataclass
class FakeSource:
    description: str
    number: int
    modality: str = "MR"
    study: str = "1.2.3"
    size: tuple = (64, 64, 20)
    kind: str = "dicom"
    volume_index: int = 0
    time: str = "100000"
    header: dict = field(init=False)

    def __post_init__(self):
        self.header = {"StudyInstanceUID": self.study, "SeriesNumber": str(self.number),
                       "SeriesDate": "20260101", "SeriesTime": self.time}
        self.id = f"{self.description}-{self.number}"


def test_one_series_keeps_the_current_behaviour():
    t1 = FakeSource("T1", 3)
    assert choose_layout([t1]) == ("", [t1])
    assert choose_layout([]) == ("", [])
    assert choose_layout([t1, FakeSource("T1", 2)]) == ("", [t1])  # the opened one stands for its kind


def test_latest_series_of_each_kind_side_by_side():
    t1, flair_old, flair_new = FakeSource("T1 MPRAGE", 3), FakeSource("FLAIR", 5), FakeSource("flair ", 9)
    scout = FakeSource("Localizer", 1, size=(256, 256, 1))
    layout, chosen = choose_layout([t1, scout, flair_old, flair_new])
    assert layout == "compare-1x2" and chosen == [t1, flair_new]
    text = describe_choice(layout, chosen)
    assert "compare-1x2" in text and "T1 MPRAGE, flair" in text


def test_up_to_four_in_2x2_and_other_studies_left_out():
    first = FakeSource("T1", 2)
    others = [FakeSource(name, n) for name, n in (("T2", 4), ("FLAIR", 5), ("DWI", 6), ("SWI", 7))]
    prior = FakeSource("T2", 12, study="9.9.9")
    ct = FakeSource("Head", 8, modality="CT")
    layout, chosen = choose_layout([first, prior, *others, ct])
    assert layout == "compare-2x2" and chosen == [first] + others[:3]
    assert prior not in chosen
    fourth_volume = FakeSource("fMRI", 3, volume_index=1)
    assert choose_layout([first, fourth_volume]) == ("", [first])


def test_same_number_is_broken_by_series_time():
    first = FakeSource("T1", 2)
    early, late = FakeSource("T2", 4, time="090000"), FakeSource("T2", 4, time="110000")
    assert choose_layout([first, late, early])[1] == [first, late]


def test_files_are_not_hung():
    nifti = FakeSource("brain.nii.gz", 0, kind="file", study="")
    assert choose_layout([nifti, FakeSource("T2", 4)]) == ("", [nifti])


def test_real_dicom_headers(tmp_path):
    from medviewer.io import discover

    write_study(tmp_path, [SeriesSpec("T1", 3), SeriesSpec("T2", 4, spacing=(0.8, 0.8, 4.0)),
                           SeriesSpec("T2", 7, shape=(6, 30, 30))])
    sources = discover(str(tmp_path)).sources
    assert {series_facts(s).number for s in sources} == {3, 4, 7}
    first = next(s for s in sources if series_facts(s).number == 3)
    layout, chosen = choose_layout([first] + [s for s in sources if s is not first])
    assert layout == "compare-1x2" and [series_facts(s).number for s in chosen] == [3, 7]
