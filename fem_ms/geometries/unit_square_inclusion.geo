// Unit square with an embedded circle of radius 0.2 at (0.5, 0.5): the mesh resolves the
// interface of a two-material permeability (surface 1 outside, surface 2 inside).
// Boundary markers as in Firedrake's UnitSquareMesh: 1: x=0, 2: x=1, 3: y=0, 4: y=1.
h = 0.08;
Point(1) = {0, 0, 0, h};
Point(2) = {1, 0, 0, h};
Point(3) = {1, 1, 0, h};
Point(4) = {0, 1, 0, h};
Point(5) = {0.5, 0.5, 0, h};
Point(6) = {0.7, 0.5, 0, h / 2};
Point(7) = {0.5, 0.7, 0, h / 2};
Point(8) = {0.3, 0.5, 0, h / 2};
Point(9) = {0.5, 0.3, 0, h / 2};
Line(1) = {1, 2};
Line(2) = {2, 3};
Line(3) = {3, 4};
Line(4) = {4, 1};
Circle(5) = {6, 5, 7};
Circle(6) = {7, 5, 8};
Circle(7) = {8, 5, 9};
Circle(8) = {9, 5, 6};
Curve Loop(1) = {1, 2, 3, 4};
Curve Loop(2) = {5, 6, 7, 8};
Plane Surface(1) = {1, 2};
Plane Surface(2) = {2};
Physical Curve(1) = {4};
Physical Curve(2) = {2};
Physical Curve(3) = {1};
Physical Curve(4) = {3};
Physical Surface(1) = {1};
Physical Surface(2) = {2};
