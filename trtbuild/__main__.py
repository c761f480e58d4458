from trtbuild.cli import main

raise SystemExit(main())
