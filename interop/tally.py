"""The pass/fail count every interop check prints and exits with."""

import sys


class Tally:
    """Counts checks; a failed one is printed with its name."""

    def __init__(self):
        self.passed = 0
        self.failed = 0

    def check(self, name, condition, detail=""):
        if condition:
            self.passed += 1
        else:
            self.failed += 1
            print(f"FAIL {name} {detail}")

    def finish(self):
        """Print `interop: N passed, N failed` and exit 1 on a failure or no check at all."""
        print(f"interop: {self.passed} passed, {self.failed} failed")
        sys.exit(1 if self.failed or not self.passed else 0)
