import pytest

from synthetic import write_csv

@pytest.fixture
def synthetic_csv(tmp_path):
    return write_csv(tmp_path / "reviews.csv")
