"""The live recognizer: `python main.py --camera 0` (arrives with the live-app issue)."""

import sys


def main() -> int:
    print("main.py: the live recognizer (camera, microphone, speech, overlay) is not built yet; "
          "what works today: `python -m dmd_lite.train`, `python -m dmd_lite.evaluate`, "
          "`python -m dmd_lite.convert --verify DIR` (see README.md).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
