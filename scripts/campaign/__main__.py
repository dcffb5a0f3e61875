"""`python -m campaign <tool>`: the same as the `campaign` command."""

from campaign.cli import main

raise SystemExit(main())
