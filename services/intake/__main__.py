from services.intake.app import service

service.main()
