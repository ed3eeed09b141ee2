import sys

from services.projection.main import main

sys.exit(main())
