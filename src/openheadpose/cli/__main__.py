from openheadpose.cli import main

main()
