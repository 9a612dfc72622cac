from collectionflow.cli import main

main()
