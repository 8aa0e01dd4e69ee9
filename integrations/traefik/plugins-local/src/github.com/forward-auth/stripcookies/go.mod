module github.com/forward-auth/stripcookies

go 1.22
