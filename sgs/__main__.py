import sys

from sgs.cli import main

sys.exit(main())
