from gmem.cli import main

main()
