import sys

from rrg_desk.cli import main

sys.exit(main())
