"""Download stage: MedMNIST's npz of every configured size, or the same files built from an image folder.

Reads params `data` and, with `data.source: folder`, `folder`. Writes data/raw/<dataset>_<size>.npz
and data/raw/classes.json (label names); the folder source also writes data/raw/manifest.csv and
data/raw/folder_summary.json. Run: python -m stages.download
"""

from bloodcells.core.params import load_params
from bloodcells.core.stage import run_stage, stage_parser
from bloodcells.data.download import download_all
from bloodcells.data.folder import build_from_folder


def main() -> None:
    stage_parser(__doc__).parse_args()

    def work() -> None:
        params = load_params()
        if params.data.source == "folder":
            build_from_folder(params.data, params.folder)
        else:
            download_all(params.data)

    run_stage("download", work)


if __name__ == "__main__":
    main()
