from services.witness.app import main

main()
