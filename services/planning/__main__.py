from services.planning.app import service

service.main()
