from landfall.cli import main

main()
