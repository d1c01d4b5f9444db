module sessionsexample

go 1.19
